"""The `cnnstudy` command: tools around the pipeline (the pipeline itself is `dvc repro`).

Subcommands register themselves in SUBCOMMANDS (name -> (help, add_arguments, run)), so a new
one (issue 12's `predict`) is one function pair and one entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from cnnstudy import predict
from cnnstudy.errors import StudyError


def _params_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", type=Path, default=None,
                        help="the params file (default: params.yaml of the current directory)")
    parser.add_argument("--check", action="store_true",
                        help="only validate: print one line and exit 0, or the error and exit 1")
    parser.add_argument("--write", type=Path, metavar="DIR", default=None,
                        help="write each section and each model as DIR/<section>.json, DIR/models/<model>.json "
                             "(what the `params` stage of dvc.yaml does)")


def _params(args: argparse.Namespace) -> None:
    from cnnstudy.params import load_params
    from cnnstudy.resolved import as_data, write_sections

    params = load_params(args.file)
    if args.write is not None:
        for path in write_sections(params, args.write):
            print(f"wrote {path}")
    elif args.check:
        print(f"{args.file or 'params.yaml'}: valid; models: {', '.join(params.models)}")
    else:
        print(json.dumps(as_data(params), indent=2, default=list))


SUBCOMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "params": ("validate params.yaml (read as DVC reads it) and print the resolved values: every "
               "section, and every model (the baseline and each variant with its one change applied)",
               _params_arguments, _params),
    "predict": ("predict the class of your own images (any format; phone photos too) with a trained model, "
                "with its top 3 and an out-of-distribution flag", predict.add_arguments, predict.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnstudy",
        description="Tools for the cnnstudy pipeline. Run the pipeline itself with `dvc repro` (or `make repro`); "
                    "experiments with `dvc exp run -S key=value`.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, _) in SUBCOMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = SUBCOMMANDS[args.command][2](args)  # None or an exit status (predict: 1 some files unreadable)
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
