"""`cnnstudy predict` on real files, in a subprocess, with a tiny model trained here."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnnstudy import runtime

runtime.select_device("cpu")

from cnnstudy import image_prep, predict  # noqa: E402
from cnnstudy.evaluation import predict_proba  # noqa: E402
from cnnstudy.ood_stats import msp, threshold_at_tpr  # noqa: E402
from cnnstudy.params import REPO_ROOT  # noqa: E402
from cnnstudy.train_cnn import train_cnn  # noqa: E402

from test_photo import phone_photo  # noqa: E402


@pytest.fixture(scope="module")
def project(tmp_path_factory, digits, tiny):
    """A project directory as `make repro` leaves it: models/baseline.keras, data/prepared
    (test split and info.json), metrics/outliers/details.json with the measured threshold; and images."""
    root = tmp_path_factory.mktemp("project")
    images, labels = digits
    model, _ = train_cnn(dataclasses.replace(tiny, epochs=1), (images[:300], labels[:300]), None, 1)
    (root / "models").mkdir()
    model.save(root / "models" / "baseline.keras")
    (root / "data" / "prepared").mkdir(parents=True)
    np.savez(root / "data" / "prepared" / "test.npz", images=images[300:], labels=labels[300:])
    (root / "data" / "prepared" / "info.json").write_text(json.dumps({"dataset": "mnist-sample", "class_names": list("0123456789")}))
    threshold = threshold_at_tpr(msp(predict_proba(model, images[300:])))
    (root / "metrics" / "outliers").mkdir(parents=True)
    (root / "metrics" / "outliers" / "details.json").write_text(json.dumps(
        {"detection": {"baseline": {"msp": {"auroc": 0.9, "threshold95": threshold}}}}))
    pics = root / "pics"
    pics.mkdir()
    phone_photo(pics / "photo.jpg")
    Image.fromarray(255 - images[301]).save(pics / "dark-on-light.png")   # like ink on paper
    Image.fromarray(images[302]).convert("RGB").resize((280, 280)).save(pics / "big.bmp")
    (pics / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return {"root": root, "model": model, "threshold": threshold, "pics": pics}


def run_cli(project, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "cnnstudy.predict", *args], cwd=project["root"], env=env,
                          capture_output=True, text=True, timeout=300)


def test_json_answers_every_readable_image_and_reports_the_others(project):
    pics = project["pics"]
    files = ["pics/photo.jpg", "pics/broken.png", "pics/dark-on-light.png", "pics/missing.png", "pics/big.bmp"]
    done = run_cli(project, "--json", *files)
    assert done.returncode == 1, done.stderr  # some files failed
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("error: pics/broken.png: not a readable image")
    assert errors[1] == "error: pics/missing.png: no such file"
    answers = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [a["file"] for a in answers] == ["pics/photo.jpg", "pics/dark-on-light.png", "pics/big.bmp"]
    expected = predict_proba(project["model"], np.stack([image_prep.read_image(pics / f.split("/")[1]).pixels
                                                         for f in ("x/photo.jpg", "x/dark-on-light.png", "x/big.bmp")]))
    for answer, p in zip(answers, expected):
        assert answer["class"] == str(int(p.argmax()))
        assert answer["probability"] == pytest.approx(p.max(), abs=1e-5)
        assert [t["class"] for t in answer["top3"]] == [str(c) for c in np.argsort(-p)[:3]]
        assert answer["ood"] == bool(p.max() < project["threshold"])
        assert answer["ood_threshold"] == pytest.approx(project["threshold"], abs=1e-6)
        assert answer["model"] == "baseline"
    assert answers[0]["inverted"] and answers[1]["inverted"] and not answers[2]["inverted"]


def test_human_output_and_help(project):
    done = run_cli(project, "pics/big.bmp")
    assert done.returncode == 0 and done.stderr == ""
    header, line = done.stdout.strip().splitlines()
    assert header.startswith("model baseline (models/baseline.keras); out of distribution below max probability")
    assert line.startswith("pics/big.bmp: ") and "top 3: " in line
    assert ("OUT OF DISTRIBUTION" in line and "unlike the test digits" in line) or \
        line.endswith("in distribution (like the test digits)")
    shown = run_cli(project, "--help")
    assert shown.returncode == 0
    for words in ("--model NAME", "--json", "out of distribution", "exit status", "phone photo"):
        assert words in shown.stdout


def test_missing_model_is_one_clear_line(project, tmp_path):
    done = subprocess.run([sys.executable, "-m", "cnnstudy.predict", "x.png"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: no model: models/tuned.keras or models/baseline.keras not found in {tmp_path}; run `make repro` "
        "(or `dvc repro train@baseline`) in the project directory, or pass --model PATH.keras"]


def test_threshold_measured_on_the_test_split_when_outliers_json_has_none(project, monkeypatch, capsys):
    monkeypatch.chdir(project["root"])
    monkeypatch.setattr(predict, "OUTLIERS_JSON", project["root"] / "metrics" / "absent.json")
    assert predict.main(["--json", "pics/big.bmp"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["ood_threshold"] == pytest.approx(project["threshold"], abs=1e-6)
    monkeypatch.setattr(predict, "PREPARED_DIR", project["root"] / "nowhere")
    assert predict.main(["pics/big.bmp"]) == 0
    out = capsys.readouterr()
    assert "no out-of-distribution threshold" in out.err and "OUT OF" not in out.out and "looks like" not in out.out


def test_cnnstudy_cli_has_predict(project, monkeypatch, capsys):
    from cnnstudy import cli

    args = cli.build_parser().parse_args(["predict", "--model", "batch_norm", "--json", "a.png", "b.jpg"])
    assert args.command == "predict" and args.model == "batch_norm" and args.json and args.images == ["a.png", "b.jpg"]
    monkeypatch.chdir(project["root"])
    assert cli.main(["predict", "--json", "pics/big.bmp", "pics/missing.png"]) == 1  # one unreadable: status 1
    out = capsys.readouterr()
    assert json.loads(out.out)["file"] == "pics/big.bmp" and "pics/missing.png: no such file" in out.err


def test_the_verdict_names_what_the_model_was_trained_on():
    from cnnstudy.predict import human_line, items

    assert items({"dataset": "fashion-mnist"}) == "clothing images"
    assert items({"dataset": "mnist"}) == items({}) == "digits"
    assert items({"dataset": "someone-elses"}) == "images"
    result = {"file": "a.png", "class": "Bag", "probability": 0.5, "ood": True, "ood_threshold": 0.9,
              "top3": [{"class": "Bag", "probability": 0.5}]}
    assert human_line(result, "clothing images").endswith("(max probability below 0.900: unlike the test clothing images)")
    assert human_line({**result, "ood": False}, "clothing images").endswith("  in distribution (like the test clothing images)")

