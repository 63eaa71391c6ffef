"""``python -m diswot``: the ``diswot`` command line, for an environment whose scripts folder is not on PATH."""

import sys

from diswot.pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
