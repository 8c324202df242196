"""`cnnstudy predict`: ask a trained model of the study about your own images.

Each image is prepared as the outlier stage prepares its images (any format and size,
dark ink on light paper or the reverse, greyscale, cropped to the ink, fitted into
20x20 and centred in 28x28), with uneven lighting flattened first so a phone photo of a
handwritten digit works (photo.py, called by image_prep). For each image it prints the predicted class, its
probability, the top 3, and whether the image looks out of distribution: its max
softmax probability is below the threshold that keeps 95% of the test images (read
from metrics/outliers/details.json, which the outlier stage writes).

Run from the project directory after `make repro` (it reads models/, metrics/ and
data/prepared/ there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnnstudy.registry import DIGITS, items_of

DEFAULT_MODELS = ("tuned", "baseline")   # the first whose file exists
OUTLIERS_JSON = Path("metrics/outliers/details.json")  # the outlier stage's detection details
PREPARED_DIR = Path("data/prepared")
TOP = 3

DESCRIPTION = __doc__.split("\n\n")[1].replace("\n", " ")
EPILOG = """\
out of distribution: "ood": true when the image's max softmax probability is below the
threshold the outlier stage measured for that model
(metrics/outliers/details.json: detection.<model>.msp.threshold95); when that file has
no threshold, it is measured here the same way on data/prepared/test.npz; with neither, no flag is given.

exit status: 0 every image answered; 1 some files could not be read (one line each
on stderr, the others are still answered); 2 usage error or no model.

examples:
  cnnstudy predict my-digit.jpg
  cnnstudy predict --model batch_norm --json scans/*.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the epilog's layout
    parser.epilog = EPILOG
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (png, jpg, bmp, tiff, ...)")
    parser.add_argument("--model", metavar="NAME",
                        help="a model of the study (models/NAME.keras) or a path to a .keras file; "
                             "default: tuned if it exists, else baseline")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line and image: file, class, probability, top3, ood, ...")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """`python -m cnnstudy.predict`; `cnnstudy predict` (cli.py) uses add_arguments and run."""
    return add_arguments(argparse.ArgumentParser(prog="cnnstudy predict", description=DESCRIPTION))


class UsageError(Exception):
    pass


def resolve_model(name: str | None) -> tuple[str, Path]:
    if name and (name.endswith(".keras") or "/" in name):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"{path}: no such model file")
        return path.stem, path
    candidates = [name] if name else list(DEFAULT_MODELS)
    for candidate in candidates:
        path = Path("models") / f"{candidate}.keras"
        if path.is_file():
            return candidate, path
    wanted = " or ".join(str(Path("models") / f"{c}.keras") for c in candidates)
    raise UsageError(f"no model: {wanted} not found in {Path.cwd()}; run `make repro` (or `dvc repro "
                     f"train@{candidates[-1]}`) in the project directory, or pass --model PATH.keras")


def prepared_info() -> dict:
    """data/prepared/info.json (dataset, class names), or {} where it is missing or unreadable."""
    try:
        info = json.loads((PREPARED_DIR / "info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def class_names(num_classes: int, info: dict) -> tuple[str, ...]:
    names = info.get("class_names")
    if isinstance(names, list) and len(names) == num_classes:
        return tuple(map(str, names))
    return DIGITS[:num_classes] if num_classes <= len(DIGITS) else tuple(map(str, range(num_classes)))


def items(info: dict) -> str:
    """What the model was trained on, in words ("digits"), for the verdict."""
    dataset = info.get("dataset")
    return items_of(dataset) if isinstance(dataset, str) else "digits"


def ood_threshold(model_name: str, model) -> tuple[float | None, str]:
    """(threshold on the max softmax probability, where it came from)."""
    try:
        detection = json.loads(OUTLIERS_JSON.read_text(encoding="utf-8"))["detection"][model_name]["msp"]
        return float(detection["threshold95"]), f"{OUTLIERS_JSON}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    test = PREPARED_DIR / "test.npz"
    if not test.is_file():
        return None, "none"
    import numpy as np

    from cnnstudy.evaluation import predict_proba
    from cnnstudy.ood_stats import msp, threshold_at_tpr

    with np.load(test, allow_pickle=False) as npz:
        images = npz["images"]
    return threshold_at_tpr(msp(predict_proba(model, images))), f"measured on {test}"


def read_images(paths: list[str]) -> tuple[list, list[str]]:
    """(prepared images, error lines) in the order given."""
    from cnnstudy.image_prep import read_image

    prepared, errors = [], []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            errors.append(f"{name}: {'is a directory' if path.is_dir() else 'no such file'}")
            continue
        try:
            prepared.append((name, read_image(path)))
        except Exception as exc:  # noqa: BLE001 - whatever the decoder raises, this file is not an image
            errors.append(f"{name}: not a readable image ({type(exc).__name__}: {exc})")
    return prepared, errors


def answer(name: str, image, probabilities, names: tuple[str, ...], threshold: float | None) -> dict:
    import numpy as np

    order = np.argsort(-probabilities, kind="stable")[:TOP]
    top = [{"class": names[c], "probability": round(float(probabilities[c]), 6)} for c in order]
    confidence = float(probabilities[order[0]])
    return {"file": name, "class": top[0]["class"], "probability": top[0]["probability"], "top3": top,
            "ood": None if threshold is None else bool(confidence < threshold),
            "ood_threshold": None if threshold is None else round(threshold, 6),
            "inverted": image.inverted, "blank": image.blank}


def human_line(result: dict, items: str = "digits") -> str:
    top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in result["top3"])
    if result["ood"] is None:
        verdict = ""
    elif result["ood"]:
        verdict = f"  OUT OF DISTRIBUTION (max probability below {result['ood_threshold']:.3f}: unlike the test {items})"
    else:
        verdict = f"  in distribution (like the test {items})"
    return f"{result['file']}: {result['class']} (probability {result['probability']:.3f}; top 3: {top}){verdict}"


def run(args: argparse.Namespace) -> int:
    try:
        model_name, model_file = resolve_model(args.model)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prepared, errors = read_images(args.images)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if prepared:
        from cnnstudy import runtime

        runtime.select_device("cpu")  # a few images: no GPU start-up
        import numpy as np

        from cnnstudy.evaluation import predict_proba

        from cnnstudy.errors import DataError
        from cnnstudy.model_files import load_model

        try:
            model = load_model(model_file, fix="run `make repro` or pass --model PATH.keras", compile=False)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        probabilities = predict_proba(model, np.stack([image.pixels for _, image in prepared]))
        info = prepared_info()
        names = class_names(probabilities.shape[1], info)
        threshold, source = ood_threshold(model_name, model)
        if threshold is None:
            print(f"note: no out-of-distribution threshold for {model_name} ({OUTLIERS_JSON} has none and "
                  f"{PREPARED_DIR / 'test.npz'} is missing); run `dvc repro outliers`", file=sys.stderr)
        elif not args.json:
            print(f"model {model_name} ({model_file}); out of distribution below max probability "
                  f"{threshold:.3f} ({source})")
        for (name, image), p in zip(prepared, probabilities):
            result = answer(name, image, p, names, threshold)
            if args.json:
                print(json.dumps({**result, "model": model_name}))
            else:
                print(human_line(result, items(info)))
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
