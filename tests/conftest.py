"""Test-wide settings: one compute thread per process.

The suite runs on 2 cores and several tests start worker subprocesses; with more threads than
cores OpenMP's spinning makes every process many times slower. Subprocesses inherit the variables.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
