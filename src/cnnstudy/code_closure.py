"""The project files a script can run: every module of the package it imports, at any depth and
function-level imports included, found by reading the code (nothing is imported).

This is what a stage's `deps` in dvc.yaml must list (tests/test_dvc_deps.py checks it), and what
inspect_models hashes to decide whether a model's figures are still current.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
PACKAGE = "cnnstudy"


def imported_modules(path: Path) -> set[str]:
    """Every module name `path` imports, at any depth of the code (function bodies too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from cnnstudy import runtime` imports the module cnnstudy.runtime.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_file(name: str, src: Path = SRC) -> Path | None:
    """cnnstudy.a.b -> src/cnnstudy/a/b.py or src/cnnstudy/a/b/__init__.py; None if neither exists."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def project_files(module: str, src: Path = SRC) -> list[Path]:
    """The files executed by importing `module`: each enclosing package's __init__.py, then its own."""
    parts = module.split(".")
    files = [module_file(".".join(parts[:i]), src) for i in range(1, len(parts) + 1)]
    return [f for f in files if f is not None]


def closure(script: Path, src: Path = SRC, package: str = PACKAGE) -> set[Path]:
    """The package's files that `script` imports, directly or through each other (not the script)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        for name in imported_modules(path):
            if name.split(".")[0] != package:
                continue
            for file in project_files(name, src):
                if file not in seen:
                    seen.add(file)
                    todo.append(file)
    return seen
