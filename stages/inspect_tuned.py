"""Stage inspect_tuned: inspect_model@<model> for the tuned model (the sweep's best
configuration refit on train + validation), under plots/inspect/tuned/. Its training log
(dvclive/tuned) has no validation curve: the refit holds no data out.

Usage: python stages/inspect_tuned.py
"""

from cnnstudy.errors import DataError
from cnnstudy.params import load_params
from cnnstudy.stage import run


def main() -> None:
    params = load_params()
    from cnnstudy.inspect_trained import inspect_trained, said
    from cnnstudy.tuned import NAME, study_models

    cfg = study_models(params.models, params.train).get(NAME)  # train plus the changes metrics/train/tuned.json records
    if cfg is None:
        raise DataError(f"metrics/train/{NAME}.json: missing; run `dvc repro tuned`")
    summary = inspect_trained(NAME, cfg.seed, params.outliers.dir, fix="run `dvc repro tuned`")
    print(said("inspect_tuned", summary))


if __name__ == "__main__":
    run(main)
