"""One model this study trained (a variant, or the tuned model) inspected from its files: the
shared body of the inspect_model@<model> and inspect_tuned stages.

Reads models/<name>.keras, its dvclive/<name> log, the prepared test split and the outlier
folder; writes plots/inspect/<name>/ (cnnstudy.inspect_outputs decides what).
"""

from __future__ import annotations

from pathlib import Path

from cnnstudy import runtime


def inspect_trained(name: str, seed: int, outliers_dir: str | Path, fix: str,
                    models_dir: Path = Path("models"), logs_dir: Path = Path("dvclive")) -> dict:
    """Every per-model output for the model `name`, seeded with `seed` (its training seed);
    `fix` is the command that rebuilds a missing or unreadable model file. Returns summary.json's numbers."""
    runtime.select_device("cpu")  # a few hundred forward/backward passes: no GPU start-up
    from cnnstudy import image_prep, inspect_outputs
    from cnnstudy.data import load_prepared
    from cnnstudy.model_files import load_model
    from cnnstudy.summary import read_history

    runtime.seed_everything(seed)
    model = load_model(Path(models_dir) / f"{name}.keras", fix=fix, compile=False)
    data = load_prepared()
    images, _ = image_prep.load_folder(outliers_dir)
    out = inspect_outputs.PLOTS_DIR / name
    summary = inspect_outputs.inspect_model(model, name, data.test, data.class_names, out, outlier_images=images,
                                            history=read_history(Path(logs_dir) / name))
    inspect_outputs.write_model(summary, out)
    return summary


def said(stage: str, summary: dict) -> str:
    """The stage's one line of output."""
    return (f"{stage}: {summary['mistakes']} mistakes of {summary['test_images']}; "
            f"integrated-gradients completeness gap {summary['saliency']['max_completeness_gap']:.2e}")
