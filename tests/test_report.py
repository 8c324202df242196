"""The report's notes beside the configuration table (cnnstudy.report), from params alone."""

import dataclasses

from cnnstudy.params import load_params
from cnnstudy.report import variant_notes


def test_plain_sgd_is_said_where_an_sgd_variant_is_described():
    models = load_params().models
    baseline = models["baseline"]
    sgd = dataclasses.replace(baseline, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True)
    (note, blank) = variant_notes({"baseline": baseline, "sgd_fast": sgd})
    assert blank == ""
    assert note.startswith("Plain SGD at the baseline's learning rate 0.001 with no momentum reached only 16.9% "
                           "test accuracy after 12 epochs in an earlier run")
    assert "not re-run here" in note  # a figure of an earlier run, stated as one
    assert note.endswith("(here sgd_fast: lr 0.05, momentum 0.9, Nesterov).")


def test_no_sgd_note_without_an_sgd_model():
    models = load_params().models
    assert variant_notes({name: cfg for name, cfg in models.items() if cfg.optimizer != "sgd"}) == []
