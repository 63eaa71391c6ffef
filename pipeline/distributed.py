"""Multi-process training under ``torchrun``: process group, ranks, reductions.

``torchrun --nproc-per-node N -m diswot.pipeline.cli train|distill ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`init_distributed` then joins the group (NCCL on CUDA, gloo on
CPU) and pins each process to its GPU. A plain ``python`` run is a world of one.
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .errors import DiswotError

__all__ = ["DistEnv", "all_gather_objects", "all_reduce_sum", "barrier", "init_distributed", "shutdown"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job (``world_size == 1`` when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        """True in a multi-process job."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints and results."""
        return self.rank == 0


def init_distributed(device: torch.device) -> DistEnv:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1``; return this process's place.

    On CUDA each process uses ``cuda:LOCAL_RANK`` (and NCCL); on CPU the gloo backend.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(device=device)
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DiswotError(
                f"LOCAL_RANK {local} has no GPU ({torch.cuda.device_count()} visible); "
                "use `nproc_per_node` <= the GPU count"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    log.info("rank %d/%d on %s (%s)", rank, world, device, backend)
    return DistEnv(rank=rank, world_size=world, local_rank=local, device=device)


def shutdown(env: DistEnv) -> None:
    """Leave the process group once every rank is here (no-op for a single process).

    The barrier keeps a rank from tearing its group down while another still uses it, and the
    collection frees what still holds the group (a ``DistributedDataParallel`` wrapper in a
    reference cycle) while the interpreter is alive: gloo's worker threads destroyed during
    interpreter shutdown abort the process ("terminate called without an active exception").
    """
    if env.enabled and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            gc.collect()
            dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    """Wait for every rank."""
    if env.enabled:
        dist.barrier()


def all_reduce_sum(env: DistEnv, values: torch.Tensor) -> torch.Tensor:
    """Sum ``values`` over ranks (in place; returned for chaining)."""
    if env.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_gather_objects(env: DistEnv, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` for one process)."""
    if not env.enabled:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out
