"""Atomic output writing: every file appears whole or not at all.

Each writer writes a temp file in the target's own directory (so the rename
never crosses a file system) and renames it over the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; rename it onto `target` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; outputs should get the usual permissions (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(target: str | Path, data: Any) -> None:
    write_text(target, json.dumps(data, indent=2, default=_jsonable) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON in `path`; broken JSON or non-UTF-8 bytes are a BrokenFileError naming the file
    (a ValueError too, so callers that catch ValueError still do)."""
    from cnnstudy.errors import BrokenFileError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BrokenFileError(f"{path}: broken JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                              f"run the stage that writes it again (`dvc repro --force <stage>`)") from None
    except UnicodeDecodeError:
        raise BrokenFileError(f"{path}: not UTF-8 text, so not JSON; "
                              f"run the stage that writes it again (`dvc repro --force <stage>`)") from None


def read_stage_json(path: str | Path, fix: str) -> Any:
    """read_json for a file another stage wrote: missing or unreadable is a DataError
    naming the file and ending in `fix` (e.g. "run `dvc repro prepare`")."""
    from cnnstudy.errors import DataError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing; {fix}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: broken JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); {fix}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc}); {fix}") from None


def write_npz(target: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(target) as tmp:
        # np.savez appends ".npz" to names without it; the temp name ends in .npz already.
        np.savez_compressed(tmp, **arrays)


def write_csv(target: str | Path, rows, columns: Sequence[str] | None = None, float_format: str = "%.6g") -> None:
    """The one CSV writer: `rows` (dicts or a pandas DataFrame) as CSV with a header, floats to
    six significant digits, missing values empty."""
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=columns)
    write_text(target, frame.to_csv(index=False, lineterminator="\n", float_format=float_format))


def long_format(series: Mapping[str, Mapping[str, Sequence]]) -> list[dict]:
    """{series name: {column: values}} -> one row per point with a `series` column first: the long
    format of DVC's `series` template (every model's or fold's curve in one file)."""
    rows = []
    for name, columns in series.items():
        for values in zip(*columns.values()):
            rows.append({"series": name, **dict(zip(columns, values))})
    return rows


def temp_pattern(target: str | Path) -> str:
    """The glob matching atomic_path's temp files for `target` (in the same folder)."""
    target = Path(target)
    return f".{target.name}.*.tmp{target.suffix}"


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Delete temp files for `target` that a killed earlier run left behind; return them."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    stale = [p for p in target.parent.glob(temp_pattern(target)) if p.is_file() and not p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def target_of_temp(path: str | Path) -> Path:
    """The final path an atomic_path temp file stands for (errors should name that); others unchanged."""
    import fnmatch

    path = Path(path)
    name = path.name
    if name.startswith(".") and ".tmp" in name:
        stem = name[1:name.rindex(".tmp")].rsplit(".", 1)[0]  # drop mkstemp's random part
        if stem and fnmatch.fnmatch(name, temp_pattern(stem)):
            return path.parent / stem
    return path


@contextlib.contextmanager
def interpreting(what: str | Path, fix: str) -> Iterator[None]:
    """Inside: reading the content of `what` (a file another stage wrote). A missing key or a
    value of the wrong kind there becomes a DataError naming it and ending in `fix`."""
    from cnnstudy.errors import DataError, StudyError

    try:
        yield
    except StudyError:
        raise
    except KeyError as exc:
        raise DataError(f"{what}: has no {exc} entry (hand-edited or from another version?); {fix}") from None
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise DataError(f"{what}: unexpected content ({type(exc).__name__}: {exc}); {fix}") from None
