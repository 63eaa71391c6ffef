"""Packaging: import direction between the packages, no import cycle, the library/CLI seam, and the
wheel: every module and its data, built from exactly the files the Docker image copies."""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("diswot", "pipeline", "proxies", "registry", "samplers", "spaces", "storage")
#: what each package may import from the project (ARCHITECTURE.md, "Imports flow one way"); ``diswot``
#: (the folder ``diswot/``) is the library's face: it names what the rooms define
ALLOWED = {
    "diswot": {"pipeline", "spaces", "proxies", "registry"},
    "pipeline": {"spaces", "proxies", "samplers", "storage", "pipeline", "registry"},
    "proxies": {"proxies", "spaces", "registry"},
    "spaces": {"spaces", "registry"},
    "samplers": {"samplers", "registry"},
    "storage": {"storage", "registry"},
    "registry": {"registry"},
}
FORBIDDEN_THIRD_PARTY = {
    "samplers": {"torch", "torchvision", "rich"},
    "storage": {"torch", "torchvision", "rich"},
    "spaces": {"rich"},
    "proxies": {"rich", "optuna"},
    "diswot": {"rich", "torch"},
}
#: the command modules of ``diswot`` (pipeline/cli/<name>.py): they share helpers, never import each other
COMMAND_MODULES = (
    "dashboard",
    "distill",
    "export",
    "rank",
    "score",
    "search",
    "show",
    "storage_server",
    "teachers",
    "train",
)


def _module_name(path: Path) -> str:
    """``pipeline/cli/search.py`` -> ``diswot.pipeline.cli.search``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts if parts[0] == "diswot" else ["diswot", *parts])


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``import from`` names (relative imports resolved against ``path``)."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(path: Path, *, top_level_only: bool = False, runtime_only: bool = False) -> set[str]:
    """Absolute names of the modules ``path`` imports (``from X import y`` also gives ``X.y``).

    ``top_level_only``: only what runs on import; ``runtime_only``: every import that can run (module level,
    in functions and classes), leaving out ``if TYPE_CHECKING:`` blocks. Neither: every import statement.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    if top_level_only:
        nodes = _top_level(tree.body)
    elif runtime_only:
        nodes = _runtime(tree)
    else:
        nodes = list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _runtime(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` outside ``if TYPE_CHECKING:`` blocks (their ``else`` runs, so it stays)."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if _is_type_checking(node):
            assert isinstance(node, ast.If)
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return out


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that run on import: the module body, into ``try``/``if`` blocks (not ``TYPE_CHECKING``)."""
    out: list[ast.stmt] = []
    for node in body:
        if _is_type_checking(node):
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
            if parts[0] in PACKAGES and parts[0] != "diswot":  # a room's folder name, not its import name
                bad.append(f"{path.relative_to(ROOT)} imports {name} (use diswot.{name} and respect the layering)")
            if parts[0] == "diswot" and len(parts) > 1 and parts[1] not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
            if parts[0] in FORBIDDEN_THIRD_PARTY.get(package, ()):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def _import_graph(*, function_level: bool = True) -> dict[str, set[str]]:
    """Project module -> the project modules it imports, in functions and classes too (what runs when they
    are called), or only at module level (what runs on import); ``if TYPE_CHECKING:`` blocks left out.

    A module's own packages are left out: Python has imported them before the module.
    """
    modules = _project_modules()
    mode = {"runtime_only": True} if function_level else {"top_level_only": True}
    return {
        name: {m for m in _imports(path, **mode) if m in modules and not (name + ".").startswith(m + ".")}
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


def _cycle_groups(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The modules on import cycles: each strongly connected component of ``graph`` with more than one
    module, or one module that imports itself (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = {stack.pop()}
            while node not in group:
                group.add(stack.pop())
            if len(group) > 1 or node in graph[node]:
                groups.add(frozenset(group))

    for start in sorted(graph):
        if start not in index:
            visit(start)
    return groups


def _describe(graph: dict[str, set[str]], group: frozenset[str]) -> str:
    """``{a, b, c}`` and one cycle through them, e.g. ``a -> b -> a``, module names without ``diswot.``."""
    cycle = _cycle({m: graph[m] & group for m in group}) or []
    short = [m.removeprefix("diswot.") for m in cycle]
    return "{" + ", ".join(sorted(m.removeprefix("diswot.") for m in group)) + "}: " + " -> ".join(short)


def test_no_module_level_import_cycle() -> None:
    """Every module can be imported first, on its own: no cycle among the imports that run on import."""
    graph = _import_graph(function_level=False)
    assert "diswot.pipeline.cli.search" in graph and "diswot.proxies._base" in graph
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle() -> None:
    """No cycle among the project's imports, function-level ones included: a module that needs another
    only inside a function still depends on it."""
    graph = _import_graph()
    assert "diswot.pipeline.cli.search" in graph and "diswot.proxies._base" in graph
    found = _cycle_groups(graph)
    assert not found, "import cycles: " + "; ".join(_describe(graph, g) for g in found)


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"e"}, "f": {"a"}}
    assert _cycle_groups(graph) == {frozenset("ab"), frozenset("cd"), frozenset("e")}
    assert _cycle_groups({"a": {"b"}, "b": set()}) == set()


def test_function_level_imports_are_seen() -> None:
    """An import inside a function (or a method) is an edge; one under ``if TYPE_CHECKING:`` is not."""
    tree = ast.parse(
        "import a\n"
        "if TYPE_CHECKING:\n    import typed\nelse:\n    import untyped\n"
        "def f():\n    import b\n    from c import d\n"
        "class K:\n    def m(self):\n        if TYPE_CHECKING:\n            import hidden\n        import e\n"
    )
    found = {
        name
        for node in _runtime(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
    }
    assert found == {"a", "untyped", "b", "c", "e"}


#: what belongs to the command line only: parsing options, drawing to the terminal, starting processes
CLI_ONLY = ("argparse", "rich", "subprocess")


def _cli_imports_outside_cli() -> set[str]:
    """``path: module`` for each import of a ``CLI_ONLY`` module outside ``pipeline/cli/`` (any import,
    in functions and under ``TYPE_CHECKING`` too: a type from argparse still ties the library to it)."""
    return {
        f"{path.relative_to(ROOT).as_posix()}: {name.split('.')[0]}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.relative_to(ROOT).as_posix().startswith("pipeline/cli/")
        for name in _imports(path)
        if name.split(".")[0] in CLI_ONLY
    }


def test_cli_modules_only_in_cli() -> None:
    """``argparse``, ``rich`` and ``subprocess`` are imported in ``pipeline/cli/`` only: the library parses
    no options, draws nothing and starts no process."""
    found = _cli_imports_outside_cli()
    assert not found, "imported outside pipeline/cli/: " + ", ".join(sorted(found))


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


def _pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the test extra's build and mypy bring tomli on Python 3.10
        import tomli as tomllib
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _package_dirs() -> dict[str, str]:
    """pyproject.toml's packages -> their folders (``diswot.pipeline.cli`` -> ``pipeline/cli``)."""
    setuptools = _pyproject()["tool"]["setuptools"]
    dirs: dict[str, str] = setuptools["package-dir"]
    assert set(setuptools["packages"]) == set(dirs), "every package of pyproject.toml needs its package-dir"
    return dirs


def _package_files() -> dict[str, Path]:
    """The path in the wheel -> the file in the checkout, for every module and package-data file."""
    data: dict[str, list[str]] = _pyproject()["tool"]["setuptools"].get("package-data", {})
    files: dict[str, Path] = {}
    for package, folder in _package_dirs().items():
        found = [
            *(ROOT / folder).glob("*.py"),
            *(p for pattern in data.get(package, []) for p in (ROOT / folder).glob(pattern)),
        ]
        for path in found:
            files[f"{package.replace('.', '/')}/{path.relative_to(ROOT / folder).as_posix()}"] = path
    return files


def _image_files_module() -> ModuleType:
    """``.ci/image_files.py``: the files the Dockerfile's build stage copies (CI builds the image's wheel from them)."""
    spec = importlib.util.spec_from_file_location("diswot_ci_image_files", ROOT / ".ci" / "image_files.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_dockerfile_copies_every_package_folder() -> None:
    """Every module and package-data file of pyproject.toml's packages, pyproject.toml and the README are among
    the files the image's build stage copies (after .dockerignore), at the same place: the wheel the image
    builds from them is the whole package."""
    image: dict[PurePosixPath, Path] = _image_files_module().image_files(ROOT)
    copied = {path.resolve() for path in image.values()}
    missing = sorted(
        {folder for folder in _package_dirs().values() if (ROOT / folder / "__init__.py").resolve() not in copied}
    )
    assert not missing, f"the Dockerfile's build stage does not copy {missing}: add `COPY <folder> ./<folder>` for each"
    for path in [*_package_files().values(), ROOT / "pyproject.toml", ROOT / "README.md"]:
        rel = PurePosixPath(path.relative_to(ROOT).as_posix())
        assert image.get(rel) == path, f"{rel} is not copied to the image's build stage (Dockerfile, .dockerignore)"
    assert not [p for p in image if "__pycache__" in p.parts or p.suffix in {".pyc", ".db", ".pt", ".log"}]


def test_image_files_follow_docker_rules() -> None:
    """The emulation of COPY and .dockerignore that CI builds the image's wheel with."""
    image = _image_files_module()
    rules = image.ignore_rules("# comment\n**/__pycache__\n*.db\ndata\n/tests\nkeep/*\n!keep/this\n")
    assert image.ignored("pipeline/cli/__pycache__/x.pyc", rules) and image.ignored("__pycache__/y.pyc", rules)
    assert image.ignored("study.db", rules) and not image.ignored("pipeline/study.db", rules)  # `*` is one level
    assert image.ignored("data/a/b.png", rules) and image.ignored("tests/x.py", rules)
    assert image.ignored("keep/that", rules) and not image.ignored("keep/this", rules)
    assert not image.ignored("pipeline/data.py", rules)
    copies = image.build_copies(
        "FROM python AS build\nWORKDIR /src\nCOPY a.toml \\\n  b.md ./\nCOPY pkg ./pkg\n"
        "FROM python AS runtime\nCOPY --from=build /opt /opt\nCOPY other ./other\n"
    )
    assert [(c.sources, str(c.dest), c.dest_is_dir) for c in copies] == [
        (("a.toml", "b.md"), ".", True),
        (("pkg",), "pkg", False),
    ]
    for bad in ("COPY --chown=1 a ./", "COPY *.py ./", "ADD a ./", 'COPY ["a", "./"]', "COPY a /elsewhere/"):
        with pytest.raises(image.ImageFilesError):
            image.build_copies(f"FROM python AS build\nWORKDIR /src\n{bad}\n")


@pytest.mark.integration
def test_wheel_contains_every_module(tmp_path: Path) -> None:
    """The wheel built from the files the image copies holds every module, the package data, the PEP 561
    markers, the licence and the ``diswot`` command."""
    image = _image_files_module()
    src = tmp_path / "src"
    for rel, path in image.image_files(ROOT).items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, src / rel)
    unmet = image.unmet_build_requires(src)
    assert not unmet, (
        f'this Python lacks {unmet} to build the wheel: install as the README says, pip install -e ".[test]"'
    )
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, "the wheel build failed:\n" + (build.stdout + build.stderr)[-4000:]
    (wheel,) = (tmp_path / "dist").glob("diswot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _package_files()
    assert any(name.endswith(".json.gz") for name in expected), "package data is declared in pyproject.toml"
    missing = sorted(set(expected) - names)
    assert not missing, f"modules or package data missing from the wheel: {missing}"
    assert {f"diswot/{package}/py.typed".replace("diswot/diswot/", "diswot/") for package in PACKAGES} <= names, (
        "PEP 561 markers"
    )
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the licence file"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "diswot = diswot.pipeline.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    for name, path in expected.items():
        assert zipfile.ZipFile(wheel).read(name) == path.read_bytes(), name


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


def _python_files(*, outside: tuple[str, ...]) -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.relative_to(ROOT).as_posix().startswith(outside)
    ]


def test_one_module_spells_the_study_record_keys() -> None:
    """Every ``diswot:*`` attribute key is spelled in ``storage/record.py`` only (the study record)."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _python_files(outside=("storage/record.py",))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if '"diswot:' in line or "'diswot:" in line
    ]
    assert not found, "a study-record key spelled outside storage/record.py: " + ", ".join(found)


#: Optuna's private attributes of studies and trials, and imports of private Optuna/optuna-dashboard modules
_PRIVATE_OPTUNA = re.compile(
    r"\._(storage|study_id|trial_id|thread_local|cached_frozen_trial|backend|thread_lock|replay_result|"
    r"sync_with_backend|set_trial_\w+_without_commit|get_stale_trial_ids|trial_id_to_study_id_and_number|studies)\b|"
    r"^\s*(from|import) optuna(_dashboard)?(\.\w+)*\._\w+|from optuna(_dashboard)?(\.\w+)* import _\w+",
    re.M,
)


def test_optuna_private_names_only_behind_the_door() -> None:
    """Optuna's and optuna-dashboard's private names are used in ``storage/_optuna.py`` (the door) and
    ``samplers/`` (an OptunaHub package, which imports no other room) only; ``tests/storage/test_optuna_door.py``
    checks each against the installed releases."""
    found = [
        f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0).strip()}"
        for path in _python_files(outside=("storage/_optuna.py", "samplers/"))
        for text in [path.read_text()]
        for m in _PRIVATE_OPTUNA.finditer(text)
    ]
    assert not found, "a private Optuna name outside storage/_optuna.py and samplers/: " + "; ".join(found)


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _message_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the string literals of ``path`` that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_library_messages_name_no_flags() -> None:
    """The library's messages name options as fields (```max_params```); only ``pipeline/cli/`` speaks
    of flags, and its error line turns each such field into its flag (``--max-params``)."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {_FLAG.search(text).group(0)}"  # type: ignore[union-attr]
        for path in _python_files(outside=("pipeline/cli/",))
        for line, text in _message_strings(path)
        if _FLAG.search(text)
    ]
    assert not found, "a flag named outside pipeline/cli/: " + ", ".join(found)


def test_the_library_search_imports_no_rich() -> None:
    """``run_search`` and what it imports draw nothing: rich is the command line's."""
    code = "import sys, diswot.pipeline.search, diswot.pipeline.study; print('rich' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr
