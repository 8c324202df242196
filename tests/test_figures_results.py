"""Result figures read at a glance: zoomed accuracy bars, off-scale failures, curves' useful range,
the most confident mistakes, every class in the confusion data, enough distinct colours."""

import numpy as np

from cnnstudy.evaluation import confusion_counts
from cnnstudy.figures import plt
from cnnstudy.figures.results import (accuracy_figure, confident_mistakes, curves_figure, mistakes_figure, palette,
                                      useful_range)


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_accuracy_bars_zoom_on_the_working_models_and_mark_a_failure_off_scale():
    names = ["baseline", "lr_high", "sgd", "wide"]
    fig = accuracy_figure(names, [0.975, 0.968, 0.31, 0.981], [10000] * 4, "Test accuracy", "test accuracy",
                          significant={"wide": "better", "sgd": "worse"})
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert 0.9 < bottom < 0.968 and 0.981 < top <= 1.0  # 95-98% fills the axis, sgd's 31% does not
    labels = texts(fig)
    assert "98.10% ▲" in labels and "97.50%" in labels
    assert any(t.startswith("31.0% ▼") and "off scale" in t for t in labels)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95% Wilson interval" in legend and any("Holm" in t for t in legend)
    plt.close(fig)


def test_a_low_model_inside_the_axis_is_drawn_as_a_bar_and_low_ranges_start_at_zero():
    fig = accuracy_figure(["baseline", "lr_high", "sgd"], [0.133, 0.183, 0.083], [60] * 3, "T", "val accuracy")
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0.0 and not any("off scale" in t for t in texts(fig))
    assert "8.30%" in texts(fig) and not any("axis starts" in t.get_text() for t in fig.texts)
    plt.close(fig)


def test_value_labels_stay_below_the_title():
    fig = accuracy_figure(["baseline", "b"], [0.97, 0.98], [1000, 1000], "T", "test accuracy")
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title_bottom = ax.title.get_window_extent(renderer).y0
    assert all(t.get_window_extent(renderer).y1 <= title_bottom for t in ax.texts)
    assert ax.get_ylim()[1] <= 1.0 or ax.get_ylim()[1] < 1.01
    plt.close(fig)


def test_curves_keep_the_useful_range_when_one_model_fails():
    histories = {"baseline": {"val_accuracy": [0.90, 0.96, 0.97]}, "wide": {"val_accuracy": [0.92, 0.97, 0.98]},
                 "sgd": {"val_accuracy": [0.10, 0.15, 0.20]}}
    (low, high), failing = useful_range(histories, "val_accuracy")
    assert failing == {"sgd"} and 0.9 < low < 0.96 and 0.98 < high <= 1.0
    (_, loss_high), loss_failing = useful_range({"a": {"val_loss": [0.5, 0.1]}, "b": {"val_loss": [2.3, 2.2]}},
                                                "val_loss")
    assert loss_failing == {"b"} and loss_high < 0.2
    fig = curves_figure(histories, "val_accuracy", "t")
    assert "sgd (off scale)" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)


def test_most_confident_mistakes_first():
    labels = np.array([0, 1, 2, 0])
    probabilities = np.array([[0.1, 0.9, 0.0], [0.0, 1.0, 0.0], [0.6, 0.0, 0.4], [0.2, 0.8, 0.0]])
    assert confident_mistakes(labels, probabilities).tolist() == [0, 3, 2]
    assert confident_mistakes(labels, probabilities, count=1).tolist() == [0]
    images = np.zeros((4, 28, 28), np.uint8)
    fig = mistakes_figure(images, labels, probabilities, ("0", "1", "2"), "m")
    assert "3 most confident mistakes of 3" in fig._suptitle.get_text()
    drawn = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(drawn) == 3 and drawn[0].get_cmap().name == "gray_r" and drawn[0].get_clim() == (0, 255)
    plt.close(fig)


def test_confusion_counts_keep_classes_never_predicted():
    matrix = [[3, 0, 0], [2, 0, 0], [1, 0, 4]]  # class 1 never predicted
    rows = confusion_counts(matrix, ("a", "b", "c"))
    assert len(rows) == 9 and {"actual": "b", "predicted": "b", "count": 0} in rows
    assert {"actual": "c", "predicted": "a", "count": 1} in rows


def test_palette_has_24_distinct_colours():
    assert len(set(palette(24))) == 24


def test_dvc_templates_have_enough_colours_and_every_confusion_cell():
    import json

    from cnnstudy.params import REPO_ROOT

    series = json.loads((REPO_ROOT / ".dvc/plots/series.json").read_text())
    assert len(set(series["encoding"]["color"]["scale"]["range"])) >= 20
    confusion = json.loads((REPO_ROOT / ".dvc/plots/confusion_counts.json").read_text())
    text_layer = confusion["spec"]["layer"][1]
    assert text_layer["mark"]["type"] == "text" and text_layer["encoding"]["text"]["field"] == "images"
    assert '"aggregate"' not in json.dumps(confusion)  # counts come from the CSV: no class can go missing
