"""Stage params: validate params.yaml before any other stage runs.

DVC removes a stage's outputs right before running it; a typo found by that stage would
cost its last good (cache: false) results. Every stage is downstream of this one, so a bad
params.yaml stops `dvc repro` here, with the key named, before anything is removed.
Writes build/params/<section>.json and build/params/models/<model>.json (resolved values).
"""

import sys
from pathlib import Path

from cnnstudy.cli import main

if __name__ == "__main__":
    sys.exit(main(["params", "--write", str(Path("build") / "params")]))
