"""Stage outliers: what the models say about images that are not digits, how repeatable
that is (inference mode, MC dropout, other models), and how well confidence detects them.

Usage: python stages/outliers.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnstudy import runtime  # noqa: E402
from cnnstudy.errors import DataError  # noqa: E402
from cnnstudy.params import BASELINE, load_params  # noqa: E402
from cnnstudy.stage import run  # noqa: E402

KFOLD_JSON = Path("metrics/kfold.json")


def main() -> None:
    start = time.perf_counter()
    params = load_params()
    cfg = params.train
    runtime.select_device(cfg.device)
    from cnnstudy import outliers

    images, skipped = outliers.load_folder(params.outliers.dir)
    model_files = {name: Path("models") / f"{name}.keras" for name in params.models}
    missing = [name for name, path in model_files.items() if not path.exists()]
    if missing:
        raise DataError(f"model file(s) missing: {', '.join(str(model_files[n]) for n in missing)}; "
                        f"run `dvc repro {' '.join(f'train@{n}' for n in missing)}`")
    import numpy as np

    if runtime.backend_name() == "tensorflow":  # predict on 23, then 512-image batches: retracing notes
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")

    from cnnstudy.data import load_prepared
    from cnnstudy.model_files import load_model

    device = runtime.describe_device(cfg.device)
    precision = runtime.resolve_precision(cfg.precision, device["device"])
    runtime.set_precision(precision)
    data = load_prepared()
    test_images, test_labels = data.test
    pixels = np.stack([image.pixels for image in images])
    opts = params.outliers
    print(f"outliers: {len(images)} images from {opts.dir} ({len(skipped)} skipped), "
          f"{len(test_labels)} test images, {opts.repeats} repeats, {device['backend']} on {device['device']}")
    timings = {"startup": time.perf_counter() - start}

    t0 = time.perf_counter()
    seed_models = {}
    for seed in opts.seeds:
        if seed == cfg.seed:
            outliers.warn_stderr(f"outliers.seeds: {seed} is train.seed, which would re-train the baseline "
                                 "itself; skipped")
            continue
        seed_models[f"{BASELINE}_seed{seed}"] = (seed, outliers.retrain_baseline(params, seed, data, KFOLD_JSON))
    timings["retrain"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    queries = {}
    models = [(name, None) for name in params.models] + [(name, m) for name, (_, m) in seed_models.items()]
    for name, model in models:
        if model is None:
            model = load_model(model_files[name], fix=f"run `dvc repro --force train@{name}`", compile=False)
        queries[name] = outliers.query_model(model, name, pixels, test_images, opts.repeats, seed=cfg.seed,
                                             test_labels=test_labels)
        q = queries[name]
        print(f"  {name}: test accuracy {q.test_accuracy:.4f}, mean max prob on outliers "
              f"{q.inference_out.max(1).mean():.3f}")
    timings["queries"] = time.perf_counter() - t0

    study = outliers.Study(images=images, skipped=skipped, class_names=data.class_names, queries=queries,
                           variants=list(params.models), seed_models={n: s for n, (s, _) in seed_models.items()},
                           repeats=opts.repeats, mc_seed=cfg.seed, reference=BASELINE, timings=timings)
    t0 = time.perf_counter()
    metrics = outliers.write_outputs(study)
    print(f"  outputs written in {time.perf_counter() - t0:.1f}s")
    inf = metrics["settings"][outliers.INFERENCE]
    mc = metrics["settings"][outliers.MC_DROPOUT]
    print(f"(a) inference max abs diff {inf['max_abs_diff']}; (b) MC dropout std of max prob "
          f"{mc['mean_std_max_prob']:.3f}, class changes {mc['class_change_rate']:.1%}; "
          f"(c) agreement {metrics['settings'][outliers.MODELS]['all']['mean_agreement_with_reference']:.1%}")
    for name, d in metrics["detection"].items():
        print(f"  {name:>16}: AUROC msp {d['msp']['auroc']:.3f} (FPR95 {d['msp']['fpr95']:.1%}), "
              f"mc entropy {d['mc_entropy']['auroc']:.3f} (FPR95 {d['mc_entropy']['fpr95']:.1%})")
    print(f"outliers: done in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    run(main)
