"""Packaging: import direction between the five packages, no import cycle, and every module in the wheel."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "proxies", "samplers", "spaces", "storage")
#: what each package may import from the project (ARCHITECTURE.md, "Imports flow one way")
ALLOWED = {
    "pipeline": {"spaces", "proxies", "samplers", "storage", "pipeline"},
    "proxies": {"proxies", "spaces"},
    "spaces": {"spaces"},
    "samplers": {"samplers"},
    "storage": {"storage"},
}
FORBIDDEN_THIRD_PARTY = {
    "samplers": {"torch", "torchvision", "rich"},
    "storage": {"torch", "torchvision", "rich"},
    "spaces": {"rich"},
    "proxies": {"rich", "optuna"},
}
#: the command modules of ``diswot`` (pipeline/cli/<name>.py): they share helpers, never import each other
COMMAND_MODULES = ("dashboard", "distill", "rank", "score", "search", "show", "storage_server", "teachers", "train")


def _module_name(path: Path) -> str:
    """``pipeline/cli/search.py`` -> ``diswot.pipeline.cli.search``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["diswot", *parts])


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``import from`` names (relative imports resolved against ``path``)."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Absolute names of the modules ``path`` imports (``from X import y`` also gives ``X.y``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = _top_level(tree.body) if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that run on import: the module body, into ``try``/``if`` blocks (not ``TYPE_CHECKING``)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        out.append(node)
        if isinstance(node, (ast.Try, ast.If)):
            out += _top_level(node.body) + _top_level(node.orelse)
            for handler in getattr(node, "handlers", []):
                out += _top_level(handler.body)
            out += _top_level(getattr(node, "finalbody", []))
    return out


def _project_modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


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


def _import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports when it is imported (function-level imports left out).

    A module's own packages are left out: Python has imported them before the module.
    """
    modules = _project_modules()
    return {
        name: {m for m in _imports(path, top_level_only=True) if m in modules and not (name + ".").startswith(m + ".")}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph``, or None."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        if node in done:
            return None
        stack.append(node)
        for nxt in sorted(graph[node]):
            found = visit(nxt)
            if found:
                return found
        stack.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start)
        if found:
            return found
    return None


def test_no_import_cycle() -> None:
    """Every module can be imported first, on its own: no module-level import cycle in the project."""
    graph = _import_graph()
    assert "diswot.pipeline.cli.search" in graph and "diswot.proxies._base" in graph
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_commands_do_not_import_each_other() -> None:
    """A command module uses the shared modules (``_console``, ``_study``, ``_training``, ...), not another command."""
    commands = {f"diswot.pipeline.cli.{name}" for name in COMMAND_MODULES}
    found = {path.stem for path in (ROOT / "pipeline" / "cli").glob("*.py") if not path.stem.startswith("_")}
    assert found == set(COMMAND_MODULES), "a new command module: add it to COMMAND_MODULES"
    bad = [
        f"{name} imports {other}"
        for name, path in _project_modules().items()
        for other in _imports(path)
        if name in commands and other in commands and other != name
    ]
    assert not bad, bad


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
        f"diswot/{path.relative_to(ROOT).as_posix()}" for package in PACKAGES for path in (ROOT / package).rglob("*.py")
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
            assert section in architecture, (
                f"{path.relative_to(ROOT)} cites a missing ARCHITECTURE.md section {section!r}"
            )
