"""Stage params: validate params.yaml before any other stage runs.

DVC removes a stage's outputs right before running it; a typo found by that stage would
cost its last good (cache: false) results. Every stage is downstream of this one, so a bad
params.yaml stops `dvc repro` here, with the key named, before anything is removed.
Writes build/params/<section>.json and build/params/models/<model>.json (resolved values),
as `cnnstudy params --write build/params` does; imports only what validating params needs.
"""

from pathlib import Path

from cnnstudy.params import load_params
from cnnstudy.resolved import write_sections
from cnnstudy.stage import run

OUT_DIR = Path("build") / "params"


def main() -> None:
    for path in write_sections(load_params(), OUT_DIR):
        print(f"wrote {path}")


if __name__ == "__main__":
    run(main)
