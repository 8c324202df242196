"""DVC stage `prepare`: data/raw -> data/prepared, metrics/data.json, plots/data/."""

from cnnstudy.params import load_params
from cnnstudy.prepare import run_prepare
from cnnstudy.stage import run


def main() -> None:
    params = load_params().prepare
    info = run_prepare(params, classes=params.classes)
    counts = ", ".join(f"{name} {n:,}" for name, n in info["counts"].items())
    subset = f", classes {info['raw_classes']}" if "raw_classes" in info else ""
    print(f"prepare: {info['dataset']}{subset}, pool={str(info['pool']).lower()}, per_class={info['per_class']}, "
          f"seed={info['seed']} -> {counts} images in data/prepared")


if __name__ == "__main__":
    run(main)
