"""The outliers stage's outputs: the Markdown report, the per-image CSV, the ROC curves as
data, the figures (cnnstudy.figures.outliers) and the metrics, each written atomically.
"""

from __future__ import annotations

from pathlib import Path

from cnnstudy.detection import SCORES
from cnnstudy.ood_report import detector_markdown
from cnnstudy.files import long_format, write_csv, write_json, write_text
from cnnstudy.outliers import ACCURATE, INFERENCE, MC_DROPOUT, MODELS, SETTING_TITLES, SETTINGS, Study
from cnnstudy.tables import grid

METRICS_JSON = Path("metrics/outliers.json")  # per model its AUROCs (a DVC metric)
DETAILS_JSON = Path("metrics/outliers/details.json")
TABLE_MD = Path("metrics/outliers.md")
TABLE_CSV = Path("metrics/outliers.csv")
PLOTS_DIR = Path("plots/outliers")
PREPROCESSING_PNG = PLOTS_DIR / "preprocessing.png"
PROBABILITIES_PNG = PLOTS_DIR / "probabilities.png"
ROC_PNG = PLOTS_DIR / "roc.png"
ROC_CSV = {"msp": PLOTS_DIR / "roc_msp.csv", "mc_entropy": PLOTS_DIR / "roc_mc_entropy.csv"}


def _fmt(value, spec: str = "{:.3f}") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return spec.format(value)
    return str(value)


CSV_COLUMNS = ("image", "setting", "model", "queries", "predicted", "max_prob", "entropy", "top3",
               "max_abs_diff", "std_max_prob", "class_changes", "distinct_classes", "reference_class",
               "agreement", "seed_agreement", "votes")


def markdown_report(study: Study, metrics: dict) -> str:
    settings = metrics["settings"]
    inf, mc, mod = settings[INFERENCE], settings[MC_DROPOUT], settings[MODELS]
    det = metrics["detection"]
    items = metrics["in_distribution"]["items"]
    # The published MNIST figures compare with MNIST only.
    literature = (" Hendrycks & Gimpel's MNIST baseline reports AUROC 0.83 to 0.98 across outlier sets."
                  if items == "digits" else "")
    lines = [
        f"# Outliers: images that are not {items}",
        "",
        f"{metrics['outliers']} images ({metrics['inverted']} inverted from a light background"
        + (f"; skipped as unreadable: {', '.join(metrics['skipped'])}" if metrics["skipped"] else "")
        + f") against the {metrics['in_distribution']['images']} images of the test split. "
        f"Each setting asks {study.repeats} times; probabilities are the reference model "
        f"`{study.reference}`'s, (c) the mean over {len(study.queries)} models.",
        "",
        "## Repeated queries",
        "",
        f"- (a) same model in inference mode: max |difference| between the {inf['queries']} probability "
        f"vectors = **{inf['max_abs_diff']:.1f}** ({'identical' if inf['identical'] else 'NOT identical'}; "
        f"over all {len(study.queries)} models: {inf['max_abs_diff_any_model']:.1f}).",
        f"- (b) MC dropout (rate {mc['dropout']}, only Dropout layers in training mode, seeds {mc['seeds']}): "
        f"max |difference| {mc['max_abs_diff']:.3f}; std of the max probability {mc['mean_std_max_prob']:.3f} "
        f"on average (max {mc['max_std_max_prob']:.3f}); the predicted class differs from inference mode in "
        f"{mc['class_change_rate']:.1%} of the queries, on {mc['images_with_class_change']} of "
        f"{metrics['outliers']} images.",
        f"- (c) {len(mod['all']['models'])} models on the same data: they agree with `{study.reference}` "
        f"on {mod['all']['mean_agreement_with_reference']:.1%} of (model, outlier) pairs, all agree on "
        f"{mod['all']['images_all_agree']} of {metrics['outliers']} outliers, "
        f"{mod['all']['mean_distinct_classes']:.2f} distinct classes per outlier on average "
        f"(max {mod['all']['max_distinct_classes']}); on the test split they agree on "
        f"{mod['all']['test_mean_agreement_with_reference']:.1%}. "
        f"Only the {len(mod['accurate']['models'])} models with test accuracy >= {ACCURATE:.0%}: "
        f"{mod['accurate']['mean_agreement_with_reference']:.1%} on outliers "
        f"({mod['accurate']['mean_distinct_classes']:.2f} distinct classes), "
        f"{mod['accurate']['test_mean_agreement_with_reference']:.1%} on the test split. "
        f"The baseline re-trained with seeds {list(study.seed_models.values())} alone: "
        f"{mod['seeds_only']['mean_agreement_with_reference']:.1%} agreement on outliers, "
        f"{mod['seeds_only']['test_mean_agreement_with_reference']:.1%} on the test split.",
        "",
        "## Out-of-distribution detection (test split = positive class)",
        "",
        f"AUROC: 1 separates perfectly, 0.5 is chance. FPR95: the share of outliers taken for {items} at the "
        f"threshold that keeps 95% of the test {items} (lower is better).{literature}",
        "",
    ]
    header = ["model", "dropout", "test acc", "AUROC (MSP)", "FPR95 (MSP)", "AUROC (MC entropy)",
              "FPR95 (MC entropy)", "mean MSP test", "mean MSP outliers"]
    rows = []
    for name, d in det.items():
        label = f"{name} (re-trained)" if "retrained_seed" in d else name
        rows.append([label, _fmt(d["dropout"], "{:.2f}"), _fmt(d["test_accuracy"], "{:.2%}"),
                     _fmt(d["msp"]["auroc"]), _fmt(d["msp"]["fpr95"], "{:.1%}"),
                     _fmt(d["mc_entropy"]["auroc"]), _fmt(d["mc_entropy"]["fpr95"], "{:.1%}"),
                     _fmt(d["msp"]["mean_in"]), _fmt(d["msp"]["mean_out"])])
    lines += [grid(header, rows), "",
              detector_markdown(metrics["ood_stats"], metrics["outliers"], metrics["in_distribution"]["images"],
                                items=items)]
    rows_by_setting: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for row in study.per_image():
        rows_by_setting[row["setting"]].append(row)
    lines += ["## Per image", ""]
    lines += [f"### {SETTING_TITLES[INFERENCE]}: `{study.reference}`", "",
              grid(["image", "predicted", "max prob", "entropy", "top 3", "max abs diff"],
                        [[r["image"], r["predicted"], _fmt(r["max_prob"]), _fmt(r["entropy"]), r["top3"],
                          _fmt(r["max_abs_diff"], "{:.1f}")] for r in rows_by_setting[INFERENCE]]), ""]
    lines += [f"### {SETTING_TITLES[MC_DROPOUT]}: `{study.reference}`, mean of {study.repeats} passes", "",
              grid(["image", "predicted", "max prob", "entropy", "top 3", "std of max prob",
                         "class changes", "distinct classes"],
                        [[r["image"], r["predicted"], _fmt(r["max_prob"]), _fmt(r["entropy"]), r["top3"],
                          _fmt(r["std_max_prob"]), f"{r['class_changes']}/{study.repeats}", r["distinct_classes"]]
                         for r in rows_by_setting[MC_DROPOUT]]), ""]
    lines += [f"### {SETTING_TITLES[MODELS]}: mean of {len(study.queries)} models", "",
              f"Votes in the order: {', '.join(study.queries)}.", "",
              grid(["image", "predicted (mean)", "max prob", "entropy", "top 3", f"{study.reference} says",
                         "agreement", "seed agreement", "distinct classes", "votes"],
                        [[r["image"], r["predicted"], _fmt(r["max_prob"]), _fmt(r["entropy"]), r["top3"],
                          r["reference_class"], _fmt(r["agreement"], "{:.0%}"), _fmt(r["seed_agreement"], "{:.0%}"),
                          r["distinct_classes"], r["votes"]] for r in rows_by_setting[MODELS]]), ""]
    return "\n".join(lines)


def headline(metrics: dict) -> dict[str, dict]:
    """Per model, the AUROC of max softmax and (where measured) of the energy score: the figures
    DVC shows. MC-dropout entropy, intervals and the threshold `cnnstudy predict` uses stay in
    metrics/outliers/details.json, so `dvc exp show` fits a terminal."""
    stats = metrics["ood_stats"]["detectors"]
    result = {}
    for name, d in metrics["detection"].items():
        result[name] = {"auroc_msp": d["msp"]["auroc"]}
        if f"{name}/energy" in stats:
            result[name]["auroc_energy"] = stats[f"{name}/energy"]["auroc"]["estimate"]
    return result


def write_outputs(study: Study) -> dict:
    """Every output of the stage, each written atomically; returns the metrics."""
    from cnnstudy import figures
    from cnnstudy.figures.outliers import preprocessing_figure, probabilities_figure, roc_figure

    metrics = study.metrics()
    curves = study.roc_curves()
    for score, path in ROC_CSV.items():
        points = {name: {"fpr": fpr, "tpr": tpr} for name, (fpr, tpr) in curves[score].items()}
        write_csv(path, long_format(points), ["series", "fpr", "tpr"])
    write_csv(TABLE_CSV, study.per_image(), CSV_COLUMNS)
    write_text(TABLE_MD, markdown_report(study, metrics))
    figures.save(preprocessing_figure(study.images), PREPROCESSING_PNG)
    figures.save(probabilities_figure(study), PROBABILITIES_PNG, dpi=100)
    figures.save(roc_figure(curves, metrics["detection"], items=study.items), ROC_PNG)
    write_json(DETAILS_JSON, metrics)
    write_json(METRICS_JSON, headline(metrics))
    return metrics
