"""Process-wide switches set for one call and restored: torch's random state, precision flags.

A library call leaves the process as it found it: the random state a build draws from, the TF32
and cuDNN switches, Optuna's verbosity and the log-record factory are set around the work that
needs them (these context managers, :func:`diswot.storage.masked_logs`) and restored after it.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import optuna
import torch

__all__ = ["optuna_verbosity", "precision_flags", "preserved_rng", "seeded"]


def _cuda_devices(device: torch.device | None) -> list[int]:
    """The CUDA devices whose generators a fork saves: all, once CUDA is initialised (``device`` does it)."""
    if device is not None and device.type == "cuda":
        torch.cuda.init()  # type: ignore[no-untyped-call]
    initialised: bool = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    return list(range(torch.cuda.device_count())) if initialised else []


@contextlib.contextmanager
def preserved_rng(device: torch.device | None = None) -> Iterator[None]:
    """Python's, NumPy's and torch's (CPU, initialised CUDA) random states restored after the block.

    Inside, the block draws from the states in force, so its results are those of an unscoped run.
    ``device``, a CUDA device, initialises CUDA first so that its generators are saved too.
    """
    import random

    import numpy as np

    python, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=_cuda_devices(device), device_type="cuda"):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """torch's generators seeded with ``seed`` inside, their states restored after.

    Module constructors draw their init from torch's default generator (they take no
    ``generator``): seeding it inside a fork gives the same weights as a ``torch.manual_seed``
    without changing the caller's random state. The CUDA generators are forked (and seeded) too
    once CUDA is initialised (``device``, a CUDA device, initialises it).
    """
    devices = _cuda_devices(device)
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.default_generator.manual_seed(seed)  # torch.manual_seed's effect, on the forked generators only
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


@contextlib.contextmanager
def precision_flags(*, tf32: bool | None = None, benchmark: bool | None = None) -> Iterator[None]:
    """TF32 matmuls/convolutions and ``cudnn.benchmark`` set inside (None: left as they are), restored after."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    try:
        if tf32 is not None:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
        if benchmark is not None:
            torch.backends.cudnn.benchmark = benchmark
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        ) = saved


@contextlib.contextmanager
def optuna_verbosity(level: int) -> Iterator[None]:
    """Optuna's log level set inside, restored after."""
    saved = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(saved)
