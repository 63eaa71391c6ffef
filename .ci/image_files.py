"""The files the Docker image is built from: the build stage's ``COPY`` sources, less what ``.dockerignore`` leaves out.

``python .ci/image_files.py DEST`` copies them into ``DEST`` as the build stage lays them out under its
``WORKDIR``, so CI builds the wheel from exactly the files the image gets, with or without Docker, and
checks that this interpreter has the build requirements of ``pyproject.toml`` (``build --no-isolation``
would otherwise stop with a setuptools traceback).
``tests/test_packaging.py`` imports it to check that every package folder of ``pyproject.toml`` is among them.

Only the forms the Dockerfile uses are understood (``COPY SRC... DEST`` of plain paths, ``WORKDIR``);
anything else stops with one line naming it, so the emulation cannot drift silently from the Dockerfile.
Patterns follow Docker's ``.dockerignore`` rules: paths relative to the context root, ``*`` and ``?`` within
one path element, ``**`` across any number, ``!`` re-includes, the last matching line wins, and a pattern
that matches a folder leaves out everything under it.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["Copy", "ImageFilesError", "build_copies", "ignore_rules", "ignored", "image_files", "unmet_build_requires"]

ROOT = Path(__file__).resolve().parents[1]
BUILD_STAGE = "build"


class ImageFilesError(Exception):
    """A Dockerfile or ``.dockerignore`` form this emulation does not understand."""


@dataclass(frozen=True)
class Copy:
    """One ``COPY SRC... DEST`` of the build stage; ``dest`` is relative to the stage's ``WORKDIR``."""

    sources: tuple[str, ...]
    dest: PurePosixPath
    dest_is_dir: bool


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = (pending + line).strip().split(None, 1)
        pending = ""
        out.append((words[0].upper(), words[1] if len(words) > 1 else ""))
    return out


def build_copies(dockerfile: str, stage: str = BUILD_STAGE) -> list[Copy]:
    """The ``COPY`` instructions from the build context in ``stage`` (``COPY --from=...`` is not the context)."""
    copies: list[Copy] = []
    current: str | None = None
    workdir = PurePosixPath("/")
    for instruction, args in _instructions(dockerfile):
        if instruction == "FROM":
            match = re.search(r"\s+AS\s+(\S+)\s*$", args, flags=re.IGNORECASE)
            current = match.group(1) if match else None
            workdir = PurePosixPath("/")
        if current != stage:
            continue
        if instruction == "WORKDIR":
            workdir = workdir / args.strip()
        elif instruction in ("COPY", "ADD"):
            copies.append(_copy(instruction, args, workdir))
    if not copies:
        raise ImageFilesError(f"the Dockerfile has no stage {stage!r} with a COPY: name the build stage `AS {stage}`")
    return copies


def _copy(instruction: str, args: str, workdir: PurePosixPath) -> Copy:
    words = args.split()
    if instruction == "ADD" or args.lstrip().startswith("[") or any(w.startswith("--") for w in words):
        raise ImageFilesError(f"unsupported `{instruction} {args}`: use `COPY SRC... DEST` with plain paths")
    if len(words) < 2 or any(c in w for w in words for c in "*?[$"):
        raise ImageFilesError(f"unsupported `COPY {args}`: name each source and the destination literally")
    *sources, dest = words
    absolute = workdir / dest
    try:
        relative = absolute.relative_to(workdir)
    except ValueError:
        raise ImageFilesError(f"`COPY {args}` writes outside the WORKDIR {workdir}: copy under it") from None
    return Copy(tuple(sources), relative, dest.endswith("/") or len(sources) > 1)


def _pattern(text: str) -> re.Pattern[str]:
    """A ``.dockerignore`` pattern as a regular expression over a context-relative POSIX path."""
    out = ""
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif text.startswith("**", i):
            out += ".*"
            i += 2
        elif text[i] == "*":
            out += "[^/]*"
            i += 1
        elif text[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(text[i])
            i += 1
    return re.compile(out + r"\Z")


def ignore_rules(dockerignore: str) -> list[tuple[bool, re.Pattern[str]]]:
    """``(include, pattern)`` for each line of a ``.dockerignore``: ``include`` for a ``!`` line."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in dockerignore.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        path = line[1:].strip() if include else line
        if "[" in path or "\\" in path:
            raise ImageFilesError(f".dockerignore line {line!r}: character classes and escapes are not supported")
        path = str(PurePosixPath("/" + path)).lstrip("/") or "."
        rules.append((include, _pattern(path)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves the context-relative ``path`` out: the last rule that matches it or a parent decides."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for include, pattern in rules:
        if any(pattern.match(c) for c in candidates):
            verdict = not include
    return verdict


def image_files(root: Path = ROOT) -> dict[PurePosixPath, Path]:
    """Every file the build stage copies: its path under the ``WORKDIR`` -> the file in ``root``."""
    rules = ignore_rules((root / ".dockerignore").read_text() if (root / ".dockerignore").exists() else "")
    files: dict[PurePosixPath, Path] = {}
    for copy in build_copies((root / "Dockerfile").read_text()):
        for source in copy.sources:
            src = root / source
            if not src.exists() or ignored(PurePosixPath(source).as_posix(), rules):
                raise ImageFilesError(f"COPY source {source!r} is not in the build context (missing or .dockerignored)")
            if src.is_dir():
                for path in sorted(p for p in src.rglob("*") if p.is_file()):
                    rel = path.relative_to(root).as_posix()
                    if not ignored(rel, rules):
                        files[copy.dest / path.relative_to(src).as_posix()] = path
            else:
                files[copy.dest / src.name if copy.dest_is_dir else copy.dest] = src
    return files


def unmet_build_requires(project: Path) -> list[str]:
    """The build requirements of ``project``'s ``pyproject.toml`` that this interpreter does not satisfy."""
    import build

    builder = build.ProjectBuilder(project)
    return sorted(
        {" -> ".join(chain) for req in builder.build_system_requires for chain in build.check_dependency(req)}
    )


def main(argv: list[str]) -> int:
    """``image_files.py DEST``: copy the image's files into ``DEST`` (which must not exist yet)."""
    if len(argv) != 1:
        sys.stderr.write("usage: python .ci/image_files.py DEST  (DEST: a folder that does not exist yet)\n")
        return 2
    dest = Path(argv[0])
    try:
        files = image_files()
        dest.mkdir(parents=True)
    except (ImageFilesError, FileExistsError) as exc:
        sys.stderr.write(f"image_files: {exc}\n")
        return 1
    for rel, src in files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    unmet = unmet_build_requires(dest)
    if unmet:
        sys.stderr.write(
            f"image_files: this Python lacks {', '.join(unmet)} to build the wheel: "
            'install the project as the README says (pip install -e ".[test]")\n'
        )
        return 1
    sys.stdout.write(f"{len(files)} files of the image's build stage copied to {dest}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
