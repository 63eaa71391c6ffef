"""The shape of a package folder: its lines, modules and longest functions.

``python benchmarks/code_shape.py pipeline --top 10`` prints the line count of every module of
``pipeline/`` (the library and ``pipeline/cli/`` apart) and the longest functions and methods, so
that a restructuring can be judged by before/after figures (BENCHMARKS.md, "The shape of the code").
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def functions(path: Path) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function and method defined in ``path``."""
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                found.append((child.end_lineno - child.lineno + 1, f"{prefix}{child.name}"))
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
    sizes = [n for n, _ in ranked]
    print(
        f"functions: {len(sizes)}, over 50 lines: {sum(n > 50 for n in sizes)}, median {sorted(sizes)[len(sizes) // 2]}"
    )


if __name__ == "__main__":
    main()
