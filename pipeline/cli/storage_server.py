"""``diswot storage-server``: Optuna's gRPC storage proxy in front of an RDB storage.

Workers then use ``--storage grpc://host:port``; only the proxy talks to the database.
"""

from __future__ import annotations

import argparse

import optuna

from diswot.storage import StorageError, install_log_masking, open_storage, parse_storage_url

from ._options import add_listen_options, add_storage_option
from ..errors import DiswotError
from ._workers import sigterm_as_interrupt
from ._console import console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``storage-server`` sub-command."""
    p = sub.add_parser(
        "storage-server", help="serve an RDB storage to workers as grpc://host:port (Optuna's gRPC proxy)"
    )
    add_storage_option(p, what="RDB storage URL to serve")
    add_listen_options(p, port=13000)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    install_log_masking()
    parsed = parse_storage_url(args.storage)
    if parsed.kind != "rdb":
        raise StorageError(
            f"the gRPC storage server serves SQL storages (sqlite, postgresql, mysql), not {parsed.kind} {parsed}; "
            "journal workers can share the journal directly"
        )
    if not 1 <= args.port <= 65535:
        raise DiswotError(f"--port must be in 1..65535, got {args.port}")
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise StorageError("the grpc package for the storage server is missing: pip install 'diswot[grpc]'") from None
    from optuna.storages import run_grpc_proxy_server

    # Optuna's docs: serve a cached RDB storage (what optuna.storages.get_storage builds).
    storage = optuna.storages.get_storage(open_storage(args.storage))
    console.print(
        f"storage server for {parsed} on grpc://{args.host}:{args.port} (Ctrl-C to stop)",
        highlight=False,
        soft_wrap=True,
    )
    sigterm_as_interrupt()  # docker stop
    try:
        run_grpc_proxy_server(storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        raise DiswotError(f"cannot listen on {args.host}:{args.port}: {exc}; choose another --port") from None
    return 0
