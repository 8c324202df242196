"""The one Markdown-table writer: rows of values, formatted per column.

A column is (row key, title, format): `format` is a str.format pattern ("{:.2%}") or a
function of the value; a missing value (None) is shown as an em dash, and a "|" inside a
cell is escaped. Cells are not padded to align (pandas' to_markdown does that, which
turns the wide per-image tables into lines of blanks and every changed cell into a diff
of the whole column).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, Union

Format = Union[str, Callable[[object], str]]
Column = tuple[str, str, Format]  # (row key, column title, format)
MISSING = "—"


def cell(value, fmt: Format = "{}") -> str:
    if value is None:
        return MISSING
    text = fmt(value) if callable(fmt) else fmt.format(value)
    return text.replace("|", "\\|")


def markdown_table(rows: Iterable[Mapping], columns: Sequence[Column]) -> str:
    """A GitHub-flavoured Markdown table of `rows` (dicts) with one column per entry of `columns`."""
    lines = ["| " + " | ".join(cell(title) for _, title, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key), fmt) for key, _, fmt in columns) + " |" for row in rows]
    return "\n".join(lines)


def grid(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A Markdown table of already formatted cells (None: missing)."""
    columns = [(str(i), title, "{}") for i, title in enumerate(header)]
    return markdown_table(({str(i): v for i, v in enumerate(row)} for row in rows), columns)


def image_link(target: str | Path, report_dir: str | Path, alt: str) -> str:
    """A Markdown image of `target`, linked relative to the folder of the file that shows it."""
    return f"![{alt}]({Path(os.path.relpath(Path(target), report_dir)).as_posix()})"
