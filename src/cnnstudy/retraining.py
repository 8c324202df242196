"""The retrain stage's loop: the baseline trained again once per seed of outliers.seeds, each
saved as its own model file, with its validation and test accuracy (the seed spread)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cnnstudy import runtime
from cnnstudy.model_files import save_model
from cnnstudy.params import TrainParams
from cnnstudy.train_cnn import train_cnn
from cnnstudy.training import as_model_input


def train_each_seed(cfg: TrainParams, data, seeds: dict[str, int], epochs: int, out_dir: Path) -> dict[str, dict]:
    """Train the baseline (`cfg`, i.e. train's params) once per seed of `seeds` ({name: seed}) and
    save each to out_dir/<name>.keras (the retrain stage); returns {name: {seed, val_accuracy, test_accuracy}}.

    Each seed starts from a fresh Keras session, as the train stage's own process does: without
    it the second model's optimizer and layers are saved under names like `adam_1`, so the file
    of a seed depends on which seeds came before it."""
    accuracies = {}
    for name, seed in seeds.items():
        runtime.clear_session()
        model, result = train_cnn(replace(cfg, seed=seed), data.train, data.val, epochs, name=name,
                                  num_classes=data.num_classes)
        save_model(model, Path(out_dir) / f"{name}.keras")
        # The baseline's seed spread, which summary and report set each variant's difference against.
        _, test_accuracy = model.evaluate(as_model_input(data.test[0]), data.test[1], verbose=0)
        accuracies[name] = {"seed": seed, "val_accuracy": result.last("val_accuracy"),
                            "test_accuracy": float(test_accuracy)}
        print(f"retrain: baseline with seed {seed}: {epochs} epochs in {result.train_time_s:.1f}s, "
              f"val accuracy {result.last('val_accuracy'):.4f}, test accuracy {test_accuracy:.4f}")
    return accuracies
