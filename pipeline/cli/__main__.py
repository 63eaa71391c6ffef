"""``python -m diswot.pipeline.cli``: the ``diswot`` command (workers and torchrun start it this way)."""

import sys

from . import main

sys.exit(main())
