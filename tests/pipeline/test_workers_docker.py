"""The container image: checked statically here (the install line is the README's, which CI runs);
built and run only when a Docker daemon answers (``-m slow``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()


def stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line on, comments dropped."""
    lines = [l for l in DOCKERFILE.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    text = "\n".join(lines)
    parts = re.split(r"(?m)^(?=FROM\s)", text)
    return [p for p in parts if p.startswith("FROM")]


def readme_install_command() -> str:
    quick = README.split("## Quick start", 1)[1]
    return next(l.strip() for l in quick.splitlines() if l.strip().startswith("pip install"))


def test_multi_stage_non_root_entrypoint() -> None:
    runtime = stages()[-1]
    assert len(stages()) >= 2
    assert "COPY --from=build /opt/venv" in runtime
    users = re.findall(r"(?m)^USER\s+(\S+)", runtime)
    assert users and users[-1] not in ("root", "0"), "the final image runs as a non-root user"
    assert re.search(r'(?m)^ENTRYPOINT \["diswot"\]$', runtime)


def test_no_build_tools_in_the_final_image() -> None:
    runtime = stages()[-1]
    for tool in ("apt-get install", "build-essential", "gcc", "g++", "make ", "pip install", "-dev"):
        assert tool not in runtime, f"{tool!r} in the runtime stage"
    assert re.match(r"FROM python:\S+-slim", runtime)


def test_install_steps_are_the_readme_s() -> None:
    command = readme_install_command()
    assert command == 'pip install -e ".[test]"'
    installs = re.findall(r"(?m)^RUN (pip install .*)$", DOCKERFILE)
    assert installs == [command], "the image installs exactly as the README (and CI) do"
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci


def test_dockerignore_keeps_secrets_and_data_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", "data", "*.db", "*.log", "test-artifacts"):
        assert entry in ignored


def test_readme_documents_containers() -> None:
    section = README.split("## Many workers, containers and the dashboard", 1)[1]
    for needle in (
        "docker build -t diswot .",
        "postgres:",
        "--workers",
        "diswot dashboard",
        "--heartbeat",
        "DISWOT_STORAGE",
        "storage-server",
    ):
        assert needle in section, needle


@pytest.mark.slow
def test_image_builds_and_runs() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker daemon here")
    subprocess.run([docker, "build", "-t", "diswot:test", str(ROOT)], check=True, timeout=3600)
    who = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "id", "diswot:test", "-u"], capture_output=True, text=True, check=True
    )
    assert who.stdout.strip() != "0"
    out = subprocess.run(
        [docker, "run", "--rm", "diswot:test", "search", "--help"], capture_output=True, text=True, check=True
    )
    assert "--workers" in out.stdout
    gcc = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "sh", "diswot:test", "-c", "command -v gcc cc make || true"],
        capture_output=True,
        text=True,
    )
    assert gcc.stdout.strip() == ""
