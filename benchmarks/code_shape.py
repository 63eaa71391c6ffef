"""The shape of a package folder: its lines, modules, longest functions and widest signatures.

``python benchmarks/code_shape.py pipeline --top 10`` prints the line count of every module of
``pipeline/`` (the library and ``pipeline/cli/`` apart), the longest functions and methods and the
widest signatures (parameters but ``self``/``cls``; ``*args``/``**kwargs`` count one each), so that
a restructuring can be judged by before/after figures (BENCHMARKS.md, "The shape of the code").
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def _width(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The parameters of ``node`` but a leading ``self``/``cls``; ``*args`` and ``**kwargs`` one each."""
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return len(names) + (a.vararg is not None) + (a.kwarg is not None)


def functions(path: Path, *, widths: bool = False) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function and method defined in ``path`` (``widths``: its
    parameter count instead of its lines)."""
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                size = _width(child) if widths else child.end_lineno - child.lineno + 1
                found.append((size, f"{prefix}{child.name}"))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="pipeline")
    parser.add_argument("--top", type=int, default=10, help="longest functions to list (default 10)")
    args = parser.parse_args()
    root = Path(args.folder)
    modules = sorted(root.rglob("*.py"))
    cli = [m for m in modules if "cli" in m.relative_to(root).parts]
    lib = [m for m in modules if m not in cli]
    count = lambda ms: sum(len(m.read_text().splitlines()) for m in ms)  # noqa: E731
    print(f"{root}/: {count(modules)} lines in {len(modules)} modules")
    print(
        f"  library: {count(lib)} lines in {len(lib)} modules; command line ({root}/cli/): {count(cli)} lines in {len(cli)} modules"
    )
    ranked = sorted(((n, f"{m.relative_to(root)}::{name}") for m in modules for n, name in functions(m)), reverse=True)
    print(f"longest functions (lines): {', '.join(f'{name} {n}' for n, name in ranked[: args.top])}")
    wide = sorted(
        ((n, f"{m.relative_to(root)}::{name}") for m in lib for n, name in functions(m, widths=True)), reverse=True
    )
    print(f"widest library signatures (parameters): {', '.join(f'{name} {n}' for n, name in wide[: args.top])}")
    sizes = [n for n, _ in ranked]
    lib_sizes = [n for m in lib for n, _ in functions(m)]
    print(
        f"functions: {len(sizes)}, over 50 lines: {sum(n > 50 for n in sizes)}, median {sorted(sizes)[len(sizes) // 2]}; "
        f"library functions over 60 lines: {sum(n > 60 for n in lib_sizes)}"
    )


if __name__ == "__main__":
    main()
