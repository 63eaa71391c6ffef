"""``diswot dashboard``: optuna-dashboard on a study storage, bound to localhost by default."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from diswot.storage import install_log_masking, open_storage, parse_storage_url

from ._options import add_artifact_dir_option, add_listen_options, add_storage_option, default_artifact_dir
from ..errors import DiswotError
from ._workers import sigterm_as_interrupt
from ._console import console

__all__ = ["add_parser", "make_dashboard_server", "run"]

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``dashboard`` sub-command."""
    p = sub.add_parser("dashboard", help="watch studies in optuna-dashboard (http://127.0.0.1:8080/dashboard/)")
    add_storage_option(p)
    add_artifact_dir_option(p, what="e.g. distilled checkpoints to download")
    add_listen_options(p, port=8080, port_help="; 0 picks a free one")
    p.set_defaults(run=run)


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """Requests go to the log at DEBUG level (``-vv``), not to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)


def make_dashboard_server(
    storage_url: str, *, host: str = "127.0.0.1", port: int = 8080, artifact_dir: str | None = None
) -> WSGIServer:
    """A WSGI server running optuna-dashboard (its ``wsgi`` app) on ``storage_url``; not started.

    Artifacts are read from ``artifact_dir``, by default where ``diswot distill`` writes them.
    """
    import optuna_dashboard

    if not 0 <= port <= 65535:
        raise DiswotError(f"--port must be in 0..65535, got {port}")
    storage = open_storage(storage_url, must_exist=True)  # never create an empty SQLite or journal file
    from optuna.artifacts import FileSystemArtifactStore

    if artifact_dir is not None:
        os.makedirs(artifact_dir, exist_ok=True)
    else:  # where distill puts them; not created: a reading command makes no folders
        artifact_dir = str(default_artifact_dir(storage_url))
    store = FileSystemArtifactStore(artifact_dir)
    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    try:
        return make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as exc:
        raise DiswotError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard until Ctrl-C."""
    install_log_masking()
    parsed = parse_storage_url(args.storage)
    server = make_dashboard_server(args.storage, host=args.host, port=args.port, artifact_dir=args.artifact_dir)
    address, port = server.server_address[:2]
    host = address.decode() if isinstance(address, bytes) else str(address)
    shown = f"[{host}]" if ":" in str(host) else host
    if not _is_loopback(args.host):
        console.print(
            f"[yellow]warning:[/yellow] listening on {args.host}: anyone who can reach this port can read and edit "
            "the studies (optuna-dashboard has no login); prefer --host 127.0.0.1 and an SSH tunnel",
            highlight=False,
        )
    console.print(
        f"optuna-dashboard for {parsed} at http://{shown}:{port}/dashboard/ (Ctrl-C to stop)",
        highlight=False,
        soft_wrap=True,
    )
    sigterm_as_interrupt()  # docker stop
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
