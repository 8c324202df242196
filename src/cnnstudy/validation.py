"""pydantic's validation errors as one line that names the dotted key, e.g.
`train.dropout: expected a number < 1.0, got 1.0` or `unknown key train.learning_rate`."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Iterator

from pydantic import BeforeValidator, Field, Strict, ValidationError

# Strict scalars: bool is no integer (`epochs: true` is a typo, not 1) and "1" is no number.
# Lists stay lax so that a YAML list fills a tuple field.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # an integer is accepted (lr: 1), a bool is not
Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict(), Field(min_length=1)]
Positive = Annotated[Int, Field(ge=1)]
Seed = Annotated[Int, Field(ge=0)]
# `mirrors: null` and `keep_models: null` read as empty lists.
NoneIsEmpty = BeforeValidator(lambda value: () if value is None else value)

_TYPES = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
          "string_type": "a string", "tuple_type": "a list", "list_type": "a list", "dict_type": "a mapping",
          "dataclass_type": "a mapping", "dataclass_args_type": "a mapping"}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def dotted(prefix: str, loc: tuple) -> str:
    """("train", "filters", 1) -> train.filters[1]"""
    key = prefix
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def one_line(prefix: str, error: dict) -> str:
    key, kind, ctx, value = dotted(prefix, error["loc"]), error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return f"missing key {key}"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"unknown key {key}"
    if kind in _TYPES:
        return f"{key}: expected {_TYPES[kind]}, got {value!r} ({type(value).__name__})"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))  # a float bound belongs to a float field
        what = "a number" if isinstance(bound, float) else "an integer"
        return f"{key}: expected {what} {_BOUNDS[kind]} {bound}, got {value}"
    if kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
        return f"{key}: expected one of {choices}; got {value!r}"
    if kind in ("too_short", "string_too_short"):
        return f"{key}: expected a non-empty {'string' if kind.startswith('string') else 'list'}, got {value!r}"
    return f"{key}: {error['msg'].removeprefix('Value error, ')}"


@contextlib.contextmanager
def named_keys(error: type[Exception], prefix: str = "") -> Iterator[None]:
    """Raise `error` with the first problem's one-line text instead of pydantic's ValidationError."""
    try:
        yield
    except ValidationError as exc:
        # An unknown key first: a misspelt key is also reported missing under its right name.
        problems = sorted(exc.errors(), key=lambda e: e["type"] not in ("extra_forbidden", "unexpected_keyword_argument"))
        lines = [one_line(prefix, problem) for problem in problems]
        more = f"; also: {'; '.join(lines[1:3])}" + ("; ..." if len(lines) > 3 else "") if len(lines) > 1 else ""
        raise error(lines[0] + more) from None
