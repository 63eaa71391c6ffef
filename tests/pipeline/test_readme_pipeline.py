"""The README's pipeline (train, search, show, distill, dashboard), run as printed on a tiny ImageFolder.

Only sizes change: fewer trials and epochs, smaller batches, and a free port for the dashboard.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import optuna

from diswot.pipeline.pick import recommended_trial
import pytest
import torch

from ..storage.conftest import wait_for_line
from .conftest import cli_env
from .test_train import make_cifar_folder

README = Path(__file__).resolve().parents[2] / "README.md"
#: per command: the option values replaced (sizes only) and the size options added
SIZES: dict[str, tuple[dict[str, str], list[str]]] = {
    "train": ({}, ["--epochs", "1", "--batch-size", "32"]),
    "search": ({"--n-trials": "4"}, ["--batch-size", "16", "--no-progress"]),
    "show": ({}, []),
    "distill": ({}, ["--epochs", "1", "--batch-size", "32"]),
    "export": ({}, []),
    "dashboard": ({}, ["--port", "0"]),
}


def readme_pipeline() -> list[list[str]]:
    """The ``diswot`` commands of the README's "The pipeline" block, without their comments."""
    text = README.read_text()
    section = text.split("## The pipeline\n", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for line in section.splitlines():  # the section's first block of commands (later ones are examples)
        if line.startswith("    diswot "):
            lines.append(line.strip())
        elif lines:
            break
    return [shlex.split(line, comments=True) for line in lines]


def sized(argv: list[str]) -> list[str]:
    """``argv`` with its sizes made small (option values replaced, size options appended)."""
    replace, extra = SIZES[argv[1]]
    out = list(argv)
    for i, token in enumerate(out[:-1]):
        if token in replace:
            out[i + 1] = replace[token]
    return out + extra


def test_readme_lists_the_whole_pipeline() -> None:
    assert [argv[1] for argv in readme_pipeline()] == list(SIZES)


@pytest.mark.integration
def test_readme_pipeline_runs_as_printed(tmp_path: Path) -> None:
    make_cifar_folder(tmp_path / "data", n_train=80, n_val=40)
    env = {k: v for k, v in cli_env().items() if k != "DISWOT_STORAGE"}
    *steps, dashboard = [sized(argv) for argv in readme_pipeline()]
    for argv in steps:
        proc = subprocess.run(
            [sys.executable, "-m", "diswot.pipeline.cli", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{shlex.join(argv)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        if argv[1] == "show":
            assert "top " in proc.stdout and "ResNet[" in proc.stdout
    assert (tmp_path / "runs" / "export" / "student.pt2").is_file()  # diswot export's program
    study = optuna.load_study(study_name="diswot", storage=f"sqlite:///{tmp_path / 'diswot.db'}")
    best = recommended_trial(study)  # what distill takes by default
    assert best is not None and "distill_top1" in best.user_attrs and (tmp_path / "artifacts").is_dir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "diswot.pipeline.cli", *dashboard[1:]],
        cwd=tmp_path,
        env=dict(env, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        match = wait_for_line(proc, r"at (http://\S+)/dashboard/", timeout=120)
        base = match[1]
        with urllib.request.urlopen(f"{base}/dashboard/", timeout=30) as page:
            assert page.status == 200
        url = f"{base}/artifacts/{study._study_id}/{best._trial_id}/{best.user_attrs['distill_artifact']}"
        with urllib.request.urlopen(url, timeout=30) as response:  # the default artifact folder is found
            (tmp_path / "downloaded.pt").write_bytes(response.read())
        checkpoint = torch.load(tmp_path / "downloaded.pt", weights_only=True)
        assert checkpoint["epoch"] == 1 and "model" in checkpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)
