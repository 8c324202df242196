"""Stage outliers: what the models say about images that are not digits, how repeatable
that is (inference mode, MC dropout, other models), and how well confidence detects them.
Trains nothing: the baseline's re-trainings with other seeds come from the retrain stage.

Usage: python stages/outliers.py
"""

import time
from pathlib import Path

from cnnstudy import runtime
from cnnstudy.errors import DataError
from cnnstudy.params import BASELINE, load_params
from cnnstudy.stage import run


def main() -> None:
    start = time.perf_counter()
    params = load_params()
    cfg = params.train
    runtime.select_device(cfg.device)
    from cnnstudy.image_prep import load_folder
    from cnnstudy.retrained import RETRAINED_DIR, other_seeds

    images, skipped = load_folder(params.outliers.dir)
    seeds = other_seeds(params.outliers.seeds, cfg.seed)
    from cnnstudy.tuned import study_models

    models = study_models(params.models, cfg)  # + the tuned model once its stage has run
    model_files = {**{name: Path("models") / f"{name}.keras" for name in models},
                   **{name: RETRAINED_DIR / f"{name}.keras" for name in seeds}}
    missing = [name for name, path in model_files.items() if not path.exists()]
    if missing:
        raise DataError(f"model file(s) missing: {', '.join(str(model_files[n]) for n in missing)}; "
                        "run `dvc repro retrain train`")
    import numpy as np

    if runtime.backend_name() == "tensorflow":  # predict on 23, then 512-image batches: retracing notes
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")

    from cnnstudy.data import load_prepared
    from cnnstudy.registry import items_of
    from cnnstudy.outlier_report import write_outputs
    from cnnstudy.outliers import INFERENCE, MC_DROPOUT, MODELS, Study
    from cnnstudy.model_files import load_model
    from cnnstudy.queries import query_model

    device, _ = runtime.set_up(cfg.device, cfg.precision)
    data = load_prepared()
    test_images, test_labels = data.test
    pixels = np.stack([image.pixels for image in images])
    opts = params.outliers
    print(f"outliers: {len(images)} images from {opts.dir} ({len(skipped)} skipped), "
          f"{len(test_labels)} test images, {opts.repeats} repeats, {device['backend']} on {device['device']}")
    timings = {"startup": time.perf_counter() - start}

    t0 = time.perf_counter()
    queries = {}
    for name, path in model_files.items():
        model = load_model(path, fix="run `dvc repro --force " + (f"train@{name}`" if name in params.models else "tuned`" if name in models else "retrain`"), compile=False)
        queries[name] = query_model(model, name, pixels, test_images, opts.repeats, seed=cfg.seed,
                                    test_labels=test_labels)
        q = queries[name]
        print(f"  {name}: test accuracy {q.test_accuracy:.4f}, mean max prob on outliers "
              f"{q.inference_out.max(1).mean():.3f}")
    timings["queries"] = time.perf_counter() - t0

    study = Study(images=images, skipped=skipped, class_names=data.class_names, items=items_of(data.dataset), queries=queries,
                  variants=list(models), seed_models=seeds, repeats=opts.repeats, mc_seed=cfg.seed,
                  reference=BASELINE, timings=timings)
    t0 = time.perf_counter()
    metrics = write_outputs(study)
    print(f"  outputs written in {time.perf_counter() - t0:.1f}s")
    inf, mc = metrics["settings"][INFERENCE], metrics["settings"][MC_DROPOUT]
    print(f"(a) inference max abs diff {inf['max_abs_diff']}; (b) MC dropout std of max prob "
          f"{mc['mean_std_max_prob']:.3f}, class changes {mc['class_change_rate']:.1%}; "
          f"(c) agreement {metrics['settings'][MODELS]['all']['mean_agreement_with_reference']:.1%}")
    for name, d in metrics["detection"].items():
        print(f"  {name:>16}: AUROC msp {d['msp']['auroc']:.3f} (FPR95 {d['msp']['fpr95']:.1%}), "
              f"mc entropy {d['mc_entropy']['auroc']:.3f} (FPR95 {d['mc_entropy']['fpr95']:.1%})")
    print(f"outliers: done in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    run(main)
