"""Packaging: import direction between the four packages, and every module in the wheel."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "samplers", "spaces", "storage")
#: what each lower package may import from the project (ARCHITECTURE.md, "Imports flow one way")
ALLOWED = {"pipeline": {"spaces", "samplers", "storage", "pipeline"}, "spaces": {"spaces"}, "samplers": {"samplers"}, "storage": {"storage"}}
FORBIDDEN_THIRD_PARTY = {"samplers": {"torch", "torchvision", "rich"}, "storage": {"torch", "torchvision", "rich"}, "spaces": {"rich"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_import_direction(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] in PACKAGES:
                bad.append(f"{path.relative_to(ROOT)} imports {name} (use diswot.{name} and respect the layering)")
            if parts[0] == "diswot" and len(parts) > 1 and parts[1] not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
            if parts[0] in FORBIDDEN_THIRD_PARTY.get(package, ()):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_no_print_in_library_code() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_torchvision_imports() -> None:
    import torch
    import torchvision

    assert torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5).tolist() == [0]


@pytest.mark.integration
def test_wheel_contains_every_module(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("diswot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"diswot/{path.relative_to(ROOT).as_posix()}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    missing = sorted(expected - names)
    assert not missing, f"modules missing from the wheel: {missing}"
    assert any(n.endswith("entry_points.txt") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "diswot = diswot.pipeline.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    assert {f"diswot/{package}/py.typed" for package in PACKAGES} <= names, "PEP 561 markers missing from the wheel"


def _project_files() -> list[Path]:
    skip = {".git", ".venv", "build", "dist", "data", "__pycache__"}
    return [
        path
        for path in ROOT.rglob("*")
        if path.suffix in {".py", ".md", ".toml", ".sh", ".cfg"}
        and not skip & set(path.relative_to(ROOT).parts)
        and not any(part.endswith(".egg-info") for part in path.parts)
    ]


def test_files_point_inside_the_repository() -> None:
    """No file refers to a design document outside the repository; ARCHITECTURE.md's cited sections exist."""
    outside = ("DESIGN" + ".md", "../" + "shared", "/work/" + "shared")
    architecture = (ROOT / "ARCHITECTURE.md").read_text()
    files = _project_files()
    assert len(files) > 50
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not [o for o in outside if o in text], f"{path.relative_to(ROOT)} points outside the repository"
        for section in re.findall(r'ARCHITECTURE\.md, "([^"]+)"', text):
            assert section in architecture, f"{path.relative_to(ROOT)} cites a missing ARCHITECTURE.md section {section!r}"
