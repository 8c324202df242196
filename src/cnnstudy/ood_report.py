"""Markdown for ood_stats.detector_table: each detector's AUROC with its bootstrap
interval, FPR95, and whether it beats the reference by more than noise."""

from __future__ import annotations

from cnnstudy.tables import grid


def detector_markdown(table: dict, outliers: int, in_distribution: int, items: str = "digits") -> str:
    boot = table["bootstrap"]
    ref = table["reference"]
    lines = [
        f"## Which detector and which model separate {items} from the outliers",
        "",
        f"{in_distribution} test {items} against {outliers} outliers. AUROC with a 95% bootstrap interval "
        f"({boot['rounds']} stratified resamples, seed {boot['seed']}); Δ = AUROC - AUROC({ref}) on the same "
        "resampled images (paired), with its 95% interval; 'yes' when that interval excludes 0.",
        "",
    ]
    rows = []
    for name, row in sorted(table["detectors"].items(), key=lambda kv: -kv[1]["auroc"]["estimate"]):
        a, versus = row["auroc"], row.get("vs_reference")
        rows.append([name, f"{a['estimate']:.3f} [{a['low']:.3f}, {a['high']:.3f}]", f"{row['fpr95']:.1%}",
                     None if versus is None else f"{versus['estimate']:+.3f} [{versus['low']:+.3f}, {versus['high']:+.3f}]",
                     None if versus is None else ("yes" if versus["beyond_noise"] else "no")])
    lines.append(grid(["detector", "AUROC [95% interval]", "FPR95", f"Δ vs {ref} [95% interval]", "beyond noise"], rows))
    ensembles = table.get("ensembles", {})
    if ensembles:
        lines += ["", "Ensembles (mean probability vector of their members): "
                  + "; ".join(f"{name}: {', '.join(members)}" for name, members in ensembles.items()) + "."]
    best = table["best"]
    lines += ["", f"Best: **{best['detector']}**" + (f"; against the runner-up {best['runner_up']}: "
                                                       f"{best['sentence']}." if "sentence" in best else ".")]
    return "\n".join(lines) + "\n"
