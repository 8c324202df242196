"""Stage train@<model>: train the baseline or one variant on the train split.

Usage: python stages/train.py <model>   (a key of `variants` in params.yaml)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnstudy import runtime  # noqa: E402
from cnnstudy.errors import StudyError  # noqa: E402
from cnnstudy.files import write_json  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.stage import run  # noqa: E402

KFOLD_JSON = Path("metrics/kfold.json")


def main() -> None:
    if len(sys.argv) != 2:
        raise StudyError("usage: python stages/train.py <model name from params.yaml variants>")
    name = sys.argv[1]
    params = load_params()
    cfg = params.model(name)
    runtime.select_device(cfg.device)
    from cnnstudy.data import load_prepared
    from cnnstudy.kfold import resolve_epochs
    from cnnstudy.model_files import save_model
    from cnnstudy.models import build_cnn, compile_model, weight_bytes
    from cnnstudy.training import fit

    device = runtime.describe_device(cfg.device)
    precision = runtime.resolve_precision(cfg.precision, device["device"])
    runtime.set_precision(precision)
    runtime.seed_everything(cfg.seed)
    epochs = resolve_epochs(cfg, params.train, KFOLD_JSON)
    data = load_prepared()
    with runtime.distribution_scope(device) as parallel:  # data parallel where there are several devices
        model = compile_model(build_cnn(cfg, name=name), cfg)
        print(f"train@{name}: {model.count_params():,} parameters, {epochs} epochs, "
              f"{len(data.train[1])} images, {device['backend']} on {device['device']}, {precision}, "
              f"{parallel['replicas']} replica(s)")
        result = fit(model, cfg, data.train, data.val, epochs, log_dir=Path("dvclive") / name, verbose=2)
    save_model(model, Path("models") / f"{name}.keras")
    write_json(Path("metrics/train") / f"{name}.json", {
        "model": name,
        "parameters": model.count_params(),
        "weight_bytes": weight_bytes(model),
        **result.summary(),
        "precision": precision,
        **device,
        **parallel,  # strategy, replicas
    })


if __name__ == "__main__":
    run(main)
