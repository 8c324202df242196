"""Stage inspect_model@<model>: what one model of the study learned and where it fails
(plots/inspect/<model>/: filters, deeper kernels, feature maps, errors, saliency for
digits and outliers, accuracy/loss per epoch, layer table, summary.json).

Usage: python stages/inspect_model.py <model>
"""

from cnnstudy.params import load_params
from cnnstudy.stage import model_argument, run


def main() -> None:
    name = model_argument()
    params = load_params()
    cfg = params.model(name)
    from cnnstudy.inspect_trained import inspect_trained, said

    summary = inspect_trained(name, cfg.seed, params.outliers.dir, fix=f"run `dvc repro train@{name}`")
    print(said(f"inspect_model@{name}", summary))


if __name__ == "__main__":
    run(main)
