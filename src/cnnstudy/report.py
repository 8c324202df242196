"""The study report: one Markdown file with every table and figure of a run.

Built only from the files the other stages wrote, so it can be regenerated at
any time (and from any DVC revision) without retraining. Figures are linked by
relative path from the report's folder.
"""

from __future__ import annotations

from pathlib import Path

from cnnstudy.environment import sentence as environment_sentence
from cnnstudy.files import read_json
from cnnstudy.params import BASELINE, Params, TrainParams
from cnnstudy.conclusions import SIGNIFICANCE, headline, observations, seed_spread
from cnnstudy.summary import COLUMNS, config_table
from cnnstudy.tables import grid, image_link, markdown_table


def _image(target: str | Path, report_dir: Path, alt: str) -> str:
    return image_link(target, report_dir, alt) if Path(target).exists() else f"*({alt}: not produced)*"


def data_section(data: dict) -> list[str]:
    splits = [s for s in ("train", "val", "test") if s in data]
    classes = list(data[splits[0]]["per_class"]) if splits else []
    rows = [[split, f"{data[split]['images']:,}", data[split]["resolution"], data[split]["bytes_per_image"],
             data[split]["total_mb"], *(data[split]["per_class"][c] for c in classes)] for split in splits]
    return [grid(["split", "images", "resolution", "bytes/image", "total MB", *classes], rows)]


def kfold_section(kfold: dict) -> list[str]:
    if kfold.get("chosen_epochs") is None:
        return [f"Epoch selection skipped: {kfold.get('skipped', 'train.epochs is fixed')}."]
    lines = [f"{kfold['folds']}-fold stratified cross-validation over train+val, early stopping on validation "
             f"loss (patience {kfold['patience']}, at most {kfold['max_epochs']} epochs). Best epochs per fold: "
             f"{kfold['best_epochs']}; mean {kfold['mean_best_epoch']:.1f} → **{kfold['chosen_epochs']} epochs**.", ""]
    lines.append(grid(["fold", "best epoch", "epochs run", "val loss", "val accuracy"],
                      [[f["fold"], f["best_epoch"], f["epochs_run"], f"{f['val_loss']:.4f}", f"{f['val_accuracy']:.2%}"]
                       for f in kfold["per_fold"]]))
    if kfold.get("capped"):
        lines += ["", f"**Capped:** every fold's best epoch is the last allowed ({kfold['max_epochs']}); the validation "
                  "loss was still falling, so the epoch count is a cap, not a choice (raise kfold.max_epochs)."]
    return lines


# Measured once, not re-run each time: the default run of commit d1b96dd (bundled sample, 1,200 test
# images, 12 epochs chosen by k-fold), when the `sgd` variant still changed the optimizer alone.
PLAIN_SGD = ("Plain SGD at the baseline's learning rate 0.001 with no momentum reached only 16.9% test accuracy after "
             "12 epochs in an earlier run of this study (the default data; a measured figure from that run, not "
             "re-run here): SGD needs its own learning rate and momentum, so an SGD variant sets them with the "
             "optimizer as one idea")


def variant_notes(models: dict[str, TrainParams]) -> list[str]:
    """What the configuration table cannot say: why an SGD variant changes its learning rate too."""
    sgd = [(name, cfg) for name, cfg in models.items() if cfg.optimizer == "sgd"]
    if not sgd:
        return []
    here = "; ".join(f"{name}: lr {cfg.lr:g}, momentum {cfg.momentum:g}" + (", Nesterov" if cfg.nesterov else "")
                     for name, cfg in sgd)
    return [f"{PLAIN_SGD} (here {here}).", ""]


def seed_lines(spread: dict | None) -> list[str]:
    if spread is None:
        return ["The baseline was trained with one seed only (outliers.seeds names no other), so the table "
                "cannot show how much a seed alone moves the accuracy.", ""]
    return [f"Seed spread: the baseline trained with {spread['runs']} seeds (train.seed and the retrain stage's "
            f"outliers.seeds) scored {spread['test_min']:.2%}–{spread['test_max']:.2%} on test and "
            f"{spread['val_min']:.2%}–{spread['val_max']:.2%} on validation; a variant inside that range differs "
            "from the baseline no more than another seed would.", ""]


def embedded_markdown(path: Path, title: str, figures: list[tuple[Path, str]], report_dir: Path) -> list[str]:
    """Another stage's Markdown under a section heading: its own headings demoted one level,
    its first H1 dropped (the section title replaces it), then its figures."""
    if not path.exists():
        return [f"## {title}", "", f"*({path.as_posix()} not produced: run `dvc repro`)*"]
    lines = [f"## {title}", ""]
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            continue
        lines.append("#" + line if line.startswith("#") else line)
    lines.append("")
    lines += [_image(fig, report_dir, alt) + "\n" for fig, alt in figures if fig.exists()]
    return lines


def build_report(params: Params, rows: list[dict], root: Path = Path("."),
                 report_file: Path = Path("reports/study.md"), extra_sections: list[list[str]] | None = None,
                 retrained: dict | None = None, environment: dict | None = None,
                 models: dict[str, TrainParams] | None = None) -> str:
    """models: every model of `rows` with its configuration (default: params' baseline and variants)."""
    report_dir = (root / report_file).parent
    data = read_json(root / "metrics/data/details.json")
    kfold = read_json(root / "metrics/kfold/details.json")
    base = next(r for r in rows if r["model"] == BASELINE)
    spread = seed_spread(base, retrained)
    out = [
        "# One hyperparameter at a time: a CNN on "
        f"{data.get('dataset', 'MNIST')}", "",
        headline(rows, spread), "",
        *([environment_sentence(environment), ""] if environment else []),
        f"Models are chosen on the validation split; the test split ({base.get('test_images', '')} images, never "
        "seen in training or epoch selection) only confirms.", "",
        "## 1. Input analysis", "", *data_section(data), "",
        _image(root / "plots/data/class_distribution.png", report_dir, "class distribution per split"), "",
        _image(root / "plots/data/samples.png", report_dir, "5 sample images per class per split"), "",
        "## 2. Epoch selection", "", *kfold_section(kfold), "",
        "## 3. Configurations (changed value in bold)", "", config_table(models or params.models), "",
        *variant_notes(models or params.models),
        "## 4. Model comparison (test split)", "",
        "Δ is the change in test accuracy against the baseline in percentage points. McNemar's exact test "
        "compares each variant's per-image correctness with the baseline's on the same test images; with one test "
        f"per variant, Holm's correction keeps the chance of any false alarm under {SIGNIFICANCE}, and conclusions "
        "use the corrected p (Holm p < 0.05: significant).", "",
        *seed_lines(spread), 
        markdown_table(rows, COLUMNS), "",
        *[_image(root / f"plots/summary/{stem}.png", report_dir, title) for stem, title in (
            ("test_accuracy", "test accuracy"), ("train_time", "training time"), ("test_time", "test time"),
            ("model_size", "model size"))], "",
        "## 5. Observations", "", *[f"- {line}" for line in observations(rows, spread)], "",
        "## 6. Training curves", "",
        _image(root / "plots/summary/curves_val_accuracy.png", report_dir, "validation accuracy per epoch"), "",
        _image(root / "plots/summary/curves_val_loss.png", report_dir, "validation loss per epoch"), "",
        "## 7. Confusion matrices and the most confident mistakes", "",
    ]
    for row in rows:
        name = row["model"]
        out += [f"### {name}", "",
                _image(root / f"plots/eval/{name}/confusion.png", report_dir, f"confusion matrix, {name}"), " ",
                _image(root / f"plots/eval/{name}/mistakes.png", report_dir, f"most confident mistakes, {name}"), ""]
    for section in extra_sections or []:
        out += [*section, ""]
    return "\n".join(out).rstrip() + "\n"
