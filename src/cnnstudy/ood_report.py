"""Markdown for ood_stats.detector_table: each detector's AUROC with its bootstrap
interval, FPR95, and whether it beats the reference by more than noise."""

from __future__ import annotations


def detector_markdown(table: dict, outliers: int, in_distribution: int) -> str:
    boot = table["bootstrap"]
    ref = table["reference"]
    lines = [
        "## Which detector and which model separate digits from non-digits",
        "",
        f"{in_distribution} test digits against {outliers} outliers. AUROC with a 95% bootstrap interval "
        f"({boot['rounds']} stratified resamples, seed {boot['seed']}); Δ = AUROC - AUROC({ref}) on the same "
        "resampled images (paired), with its 95% interval; 'yes' when that interval excludes 0.",
        "",
        "| detector | AUROC [95% interval] | FPR95 | Δ vs " + ref + " [95% interval] | beyond noise |",
        "|---|---|---|---|---|",
    ]
    ranked = sorted(table["detectors"].items(), key=lambda kv: -kv[1]["auroc"]["estimate"])
    for name, row in ranked:
        a = row["auroc"]
        versus = row.get("vs_reference")
        delta = "—" if versus is None else f"{versus['estimate']:+.3f} [{versus['low']:+.3f}, {versus['high']:+.3f}]"
        noise = "—" if versus is None else ("yes" if versus["beyond_noise"] else "no")
        lines.append(f"| {name} | {a['estimate']:.3f} [{a['low']:.3f}, {a['high']:.3f}] | {row['fpr95']:.1%} | "
                     f"{delta} | {noise} |")
    best = table["best"]
    lines += ["", f"Best: **{best['detector']}**" + (f"; against the runner-up {best['runner_up']}: "
                                                       f"{best['sentence']}." if "sentence" in best else ".")]
    return "\n".join(lines) + "\n"
