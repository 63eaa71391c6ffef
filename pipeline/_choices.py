"""The choice lists of the command line, in a module that imports no torch.

``diswot --help`` and argument errors must not wait for torch: the parser is built from these
names. The modules that implement them (:mod:`.data`, :mod:`.init`, :mod:`.scoring`, the DisWOT
proxy) take them from here, or are checked against them (``tests/test_packaging.py``).
"""

from __future__ import annotations

__all__ = [
    "CHECKPOINT_NAME",
    "DATASETS",
    "DEFAULT_INIT_DRAW",
    "INIT_DRAWS",
    "INITS",
    "PRECISIONS",
    "RESULTS_NAME",
    "SEMANTIC_MODES",
    "SPACES",
]

#: ``--dataset``: torchvision's CIFARs, ImageFolders and seeded random images (:mod:`.data`)
DATASETS = ("cifar10", "cifar100", "imagenet", "imagefolder", "synthetic")
#: ``--space``: the registered search spaces, in their registration order (``diswot.spaces.list_spaces()``,
#: which imports torch; ``tests/pipeline/test_options.py`` checks the two agree)
SPACES = ("s0", "nb201", "s2-cifar", "s2-imagenet", "macro", "autoformer-ti", "pit-ti")
#: ``--init`` (:mod:`.init`)
INITS = ("gaussian", "kaiming", "normal", "torch")
#: ``--init-draw``: each layer's init from its own seeded generator, or all from one stream (:mod:`.init`)
INIT_DRAWS = ("layer", "stream")
#: how a new study draws its inits: each layer from its own seeded generator (common random numbers)
DEFAULT_INIT_DRAW = "layer"
#: ``--precision`` of the scorer (:mod:`.scoring`)
PRECISIONS = ("fp32", "tf32", "bf16")
#: ``--semantic``: the DisWOT semantic term's forms (``diswot.proxies.SEMANTIC_MODES``)
SEMANTIC_MODES = ("auto", "channel", "class")
#: a run folder's files (``diswot train --out DIR``): the checkpoint (:mod:`.checkpoint`) and the results (:mod:`.training`)
CHECKPOINT_NAME = "checkpoint.pt"
RESULTS_NAME = "results.json"
