"""The container image: checked statically here (the build stage builds the wheel and installs it without the
test tools; CI builds the same wheel, ``.ci/image_wheel``); built and run only when a Docker daemon answers
(``-m slow``)."""

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


def test_image_installs_the_wheel_without_the_test_tools() -> None:
    """The build stage builds the wheel from the files it copied and installs that wheel (no editable
    install, no ``test`` extra); the runtime stage gets the virtualenv only; CI builds the same wheel."""
    build, runtime = stages()[0], stages()[-1]
    assert re.search(r"(?m)^RUN pip wheel --no-deps --wheel-dir /dist \.$", build)
    (install,) = re.findall(r"(?m)^.*\binstall\b.*$", build)
    wheel = re.search(r'"\$\(ls /dist/diswot-\*\.whl\)\[([a-z,]+)\]"', install)
    assert wheel, f"the build stage installs the wheel it built: {install.strip()}"
    extras = set(wheel.group(1).split(","))
    assert "test" not in extras and extras <= set(optional_dependencies()), extras
    assert "-e" not in install.split()
    assert re.findall(r"(?m)^COPY .*$", runtime) == ["COPY --from=build /opt/venv /opt/venv"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"(?m)^\.ci/image_wheel$", ci) and "image_files.py" in (ROOT / ".ci" / "image_wheel").read_text()


def optional_dependencies() -> list[str]:
    """The extras of pyproject.toml: the names of ``[project.optional-dependencies]``."""
    text = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return re.findall(r"(?m)^([a-z]+) = \[", text)


def test_dockerignore_keeps_secrets_and_data_out() -> None:
    ignored = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if not l.startswith("#")]
    for entry in (".git", "data", "**/*.db", "**/*.log", "**/*.pt", "**/__pycache__", "test-artifacts", "tests"):
        assert entry in ignored, entry


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
    version = re.search(r"(?m)^ARG PYTHON_VERSION=(\S+)$", DOCKERFILE)
    base = f"python:{version.group(1) if version else '3.11'}-slim"
    if subprocess.run([docker, "pull", "-q", base], capture_output=True).returncode != 0:
        pytest.skip(f"the base image {base} cannot be pulled")
    subprocess.run([docker, "build", "-t", "diswot:test", str(ROOT)], check=True, timeout=3600)
    who = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "id", "diswot:test", "-u"], capture_output=True, text=True, check=True
    )
    assert who.stdout.strip() != "0"
    out = subprocess.run(
        [docker, "run", "--rm", "diswot:test", "search", "--help"], capture_output=True, text=True, check=True
    )
    assert "--workers" in out.stdout
    python = [docker, "run", "--rm", "--entrypoint", "python", "diswot:test", "-c"]
    assert subprocess.run([*python, "import pytest"], capture_output=True).returncode != 0, "test tools in the image"
    data = "import importlib.resources as r; print(sorted(p.name for p in r.files('diswot.pipeline').iterdir()))"
    assert "truth" in subprocess.run([*python, data], capture_output=True, text=True, check=True).stdout
    gcc = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "sh", "diswot:test", "-c", "command -v gcc cc make || true"],
        capture_output=True,
        text=True,
    )
    assert gcc.stdout.strip() == ""
