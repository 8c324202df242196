"""The report's inspection section: what each network learned and where it fails.

Built from what the inspect stages wrote (plots/inspect/<model>/, metrics/inspect.md); the
report stage adds it with one call, `inspect_section(models, report_dir)`. The paths are
defined here and used by inspect_outputs, which writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cnnstudy.files import read_json
from cnnstudy.tables import image_link

PLOTS_DIR = Path("plots/inspect")
ACROSS_MD = Path("metrics/inspect.md")
RECALL_PNG = PLOTS_DIR / "recall.png"
TITLE = "10. What the networks learned and where they fail"
# Per model, in reading order: what it learned, then where it fails, then how it trained.
PER_MODEL = (
    ("filters.png", "first conv layer's kernels"),
    ("kernels_deeper.png", "deeper conv layers: mean |weight| per channel pair and principal kernels"),
    ("feature_maps.png", "conv block activations for one test digit per class"),
    ("errors.png", "misclassified test images, most confident first"),
    ("saliency_digits.png", "integrated gradients: test digits, then the most confident mistakes"),
    ("saliency_outliers.png", "integrated gradients: what made it sure about the outliers"),
    ("history.png", "training and validation accuracy and loss per epoch"),
)


def _demoted(path: Path, levels: int) -> list[str]:
    """A Markdown file's lines without its H1, its other headings `levels` deeper."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            continue
        lines.append("#" * levels + line if line.startswith("#") else line)
    return lines


def model_section(name: str, report_dir: Path, plots_dir: Path = PLOTS_DIR) -> list[str]:
    folder = plots_dir / name
    if not folder.is_dir():
        return [f"### {name}", "", f"*({folder.as_posix()} not produced: run `dvc repro`)*", ""]
    lines = [f"### {name}", ""]
    summary_file = folder / "summary.json"
    if summary_file.exists():
        summary = read_json(summary_file)
        said = (f"{summary['mistakes']} of {summary['test_images']:,} test images misclassified "
                f"({summary['test_accuracy']:.2%} accurate); {summary['parameters']:,} parameters.")
        if "saliency" in summary:
            said += (f" Integrated gradients' completeness gap (sum of attributions against p(x) - p(black)): "
                     f"at most {summary['saliency']['max_completeness_gap']:.1e}.")
        lines += [said, ""]
    lines += [image_link(folder / png, report_dir, f"{name}: {alt}") + "\n" for png, alt in PER_MODEL
              if (folder / png).exists()]
    if (folder / "layers.md").exists():
        lines += ["<details><summary>Layers</summary>", "", *_demoted(folder / "layers.md", 2), "", "</details>", ""]
    return lines


def inspect_section(models: Sequence[str], report_dir: Path, title: str = TITLE, plots_dir: Path = PLOTS_DIR,
                    across_md: Path = ACROSS_MD) -> list[str]:
    """The section: recall and confused pairs across models, then every model's figures."""
    lines = [f"## {title}", "",
             "Saliency is integrated gradients of the predicted class's probability from a black image (the "
             "models' 'no ink' input), the Riemann sum of the gradient along the straight path; red pixels "
             "raised the probability, blue lowered it. Digits are drawn dark on white everywhere.", ""]
    if across_md.exists():
        lines += [*_demoted(across_md, 1), ""]
    else:
        lines += [f"*({across_md.as_posix()} not produced: run `dvc repro inspect_models`)*", ""]
    if (plots_dir / RECALL_PNG.name).exists():
        lines += [image_link(plots_dir / RECALL_PNG.name, report_dir, "recall per class and model") + "\n"]
    for name in models:
        lines += model_section(name, report_dir, plots_dir)
    return lines
