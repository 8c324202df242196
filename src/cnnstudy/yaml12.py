"""Read a YAML file exactly as DVC reads params.yaml.

DVC (dvc/utils/serialize/_yaml.py, parse_yaml) uses ruamel.yaml's YAML(typ="safe"): YAML 1.2,
so `1e-3` is a float, `yes`/`on` are strings, and a duplicated key is an error. PyYAML (YAML
1.1) disagrees on all three, so a stage reading with it could see another value than the one
DVC hashed for `dvc repro`'s "up to date".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError


def parse_yaml(text: str) -> Any:
    return YAML(typ="safe").load(text)


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """The file's data; any failure becomes `error` with one line naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        return parse_yaml(text)
    except DuplicateKeyError as exc:
        raise error(f"{path}: {duplicate_key(exc)}") from None
    except MarkedYAMLError as exc:
        where = f", line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise error(f"{path} is not valid YAML{where}: {exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from None


def duplicate_key(exc: DuplicateKeyError) -> str:
    # ruamel's problem text: found duplicate key "lr" with value "2" (original value: "1")
    key = exc.problem.split('"')[1] if exc.problem and '"' in exc.problem else "?"
    first = exc.context_mark.line + 1 if exc.context_mark else "?"
    return (f"duplicate key {key!r} at line {exc.problem_mark.line + 1} (its mapping starts at line {first}): "
            "DVC refuses a duplicated key; keep one")
