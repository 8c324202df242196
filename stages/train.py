"""Stage train@<model>: train the baseline or one variant on the train split.

Usage: python stages/train.py <model>   (a key of `variants` in params.yaml)
"""

from pathlib import Path

from cnnstudy import runtime
from cnnstudy.files import write_json
from cnnstudy.params import load_params
from cnnstudy.stage import model_argument, run


def main() -> None:
    name = model_argument()
    params = load_params()
    cfg = params.model(name)
    runtime.select_device(cfg.device)
    from cnnstudy.data import load_prepared
    from cnnstudy.epochs import resolve_epochs
    from cnnstudy.models import weight_bytes
    from cnnstudy.train_cnn import train_cnn
    from cnnstudy.model_files import save_model

    device, precision = runtime.set_up(cfg.device, cfg.precision)
    epochs = resolve_epochs(cfg, params.train)
    data = load_prepared()
    with runtime.distribution_scope(device) as parallel:  # data parallel where there are several devices
        print(f"train@{name}: {epochs} epochs, {len(data.train[1])} images, {device['backend']} on "
              f"{device['device']}, {precision}, {parallel['replicas']} replica(s)")
        # progress lines come from cnnstudy.progress (training.fit), not Keras' verbose output
        model, result = train_cnn(cfg, data.train, data.val, epochs, name=name, log_dir=Path("dvclive") / name,
                                  num_classes=data.num_classes)
    save_model(model, Path("models") / f"{name}.keras")
    print(f"train@{name}: {model.count_params():,} parameters, {result.train_time_s:.1f} s")
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
