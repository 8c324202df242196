"""The training loop, for any compiled Keras model: the optimizer table, `compile_model`, and
`fit` with per-epoch timing and a dvclive log. It knows nothing of the model (the study's
CNN is trained by cnnstudy.train_cnn, the standard models by cnnstudy.compare).

Timing starts when `fit` starts, so process start-up and imports are never
counted; the first epoch (which includes tracing and graph building) is
reported apart from the steady-state rest.

Speed (measured by benchmarks/bench.py, see benchmarks/README.md): the images stay
uint8 (the model rescales them: a quarter of float32's memory, no slower) and each
call into the backend runs several training steps (STEPS_PER_EXECUTION), which does
not change the maths. The large gain is precision (train.precision, set by the stage
through cnnstudy.runtime): bfloat16 on CPUs with native bf16 instructions.

Keras API only: this runs on the TensorFlow and JAX backends alike.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from cnnstudy.errors import StudyError
from cnnstudy.progress import Progress

# Training steps per call into the backend's compiled function: fewer Python round
# trips per epoch (about 3% more images/s here). Callbacks still see every epoch;
# batch-level callbacks see groups of steps.
STEPS_PER_EXECUTION = 8
# Validation batch size; None: the training batch size. 1024 was no faster on the
# default data (1,200 validation images) and raised peak memory by about 60 MB.
VALIDATION_BATCH: int | None = None


# train.optimizer -> Keras optimizer class: the one table (the study's CNN, the sweep and compare use it).
OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop,
              "adamax": keras.optimizers.Adamax, "adagrad": keras.optimizers.Adagrad,
              "adadelta": keras.optimizers.Adadelta, "nadam": keras.optimizers.Nadam}
# Which optimizers take train.momentum / train.nesterov; the others have no such setting.
TAKES_MOMENTUM = {"sgd", "rmsprop"}
TAKES_NESTEROV = {"sgd"}
# train.loss -> Keras loss, all on the softmax outputs. MSE and MAE compare them with one-hot
# targets (fit encodes the integer labels); cross-entropy takes the integer labels as they are.
LOSSES = {"crossentropy": "sparse_categorical_crossentropy", "mse": "mean_squared_error",
          "mae": "mean_absolute_error"}
ONE_HOT_LOSSES = {"mean_squared_error", "mean_absolute_error"}


def compile_model(model: keras.Model, optimizer: str, learning_rate, loss: str = "crossentropy",
                  momentum: float = 0.0, nesterov: bool = False, **options) -> keras.Model:
    """Compile with accuracy as the metric; `learning_rate` is a number or a keras.optimizers.schedules
    schedule; `momentum`/`nesterov` reach the optimizers that have them; `options` go to Model.compile
    (tests pass run_eagerly=True)."""
    settings = {"learning_rate": learning_rate}
    if optimizer in TAKES_MOMENTUM and momentum:
        settings["momentum"] = momentum
    if optimizer in TAKES_NESTEROV and nesterov:
        settings["nesterov"] = nesterov
    # metrics must be a keyword: Keras 3 takes a third positional argument as loss_weights.
    model.compile(optimizer=OPTIMIZERS[optimizer](**settings), loss=LOSSES[loss], metrics=["accuracy"], **options)
    return model


def targets(model: keras.Model, labels: np.ndarray) -> np.ndarray:
    """Integer labels as the model's loss wants them: as they are, or one-hot for MSE/MAE."""
    if model.loss in ONE_HOT_LOSSES:
        return np.eye(int(model.output_shape[-1]), dtype="float32")[labels]
    return labels


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class LiveLogger(keras.callbacks.Callback):
    """dvclive logging that works on every Keras backend.

    dvclive's own DVCLiveCallback imports tensorflow; this one needs only Keras.
    Metrics land as train/<m> and val/<m>, one step per epoch (step = epoch number).
    """

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        from dvclive import Live

        # dvcyaml=None: plots are declared by hand in dvc.yaml, which Live must not rewrite.
        self.live = Live(str(directory), dvcyaml=None, save_dvc_exp=False, report=None)

    def on_epoch_end(self, epoch, logs=None):
        self.live.step = epoch + 1
        for name, value in (logs or {}).items():
            split, metric = ("val", name[4:]) if name.startswith("val_") else ("train", name)
            self.live.log_metric(f"{split}/{metric}", float(value))
        self.live.next_step()

    def on_train_end(self, logs=None):
        self.live.end()


@dataclass
class TrainResult:
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    images: int
    extra: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.epoch_seconds)

    @property
    def first_epoch_s(self) -> float:
        return self.epoch_seconds[0]

    @property
    def rest_epochs_s(self) -> float:
        return float(sum(self.epoch_seconds[1:]))

    @property
    def train_time_s(self) -> float:
        return float(sum(self.epoch_seconds))

    @property
    def images_per_s(self) -> float | None:
        """Steady state: the epochs after the first, which pays for tracing."""
        if self.epochs < 2:
            return None
        return self.images * (self.epochs - 1) / self.rest_epochs_s

    def last(self, metric: str) -> float | None:
        values = self.history.get(metric)
        return float(values[-1]) if values else None

    def summary(self) -> dict:
        return {
            "epochs": self.epochs,
            "train_time_s": round(self.train_time_s, 3),
            "first_epoch_s": round(self.first_epoch_s, 3),
            "rest_epochs_s": round(self.rest_epochs_s, 3),
            "images_per_s": None if self.images_per_s is None else round(self.images_per_s, 1),
            "train_loss": self.last("loss"),
            "train_accuracy": self.last("accuracy"),
            "val_loss": self.last("val_loss"),
            "val_accuracy": self.last("val_accuracy"),
            **self.extra,
        }


def as_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 28, 28, 1) uint8; the model rescales to [0, 1] itself."""
    if images.ndim == 3:
        images = images[..., None]
    return images


def fit(model: keras.Model, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray] | None,
        epochs: int, batch_size: int, callbacks: list | None = None, log_dir: str | Path | None = None,
        verbose: int = 0) -> TrainResult:
    """Train `model` (already compiled) for `epochs` epochs of `batch_size` images."""
    x_train, y_train = train
    if len(x_train) == 0:
        raise StudyError("the training split is empty; raise prepare.per_class or prepare.split.train")
    timer = EpochTimer()
    all_callbacks = [timer, Progress(epochs, label=model.name), *(callbacks or [])]
    if log_dir is not None:
        all_callbacks.append(LiveLogger(log_dir))
    validation = None if val is None else (as_model_input(val[0]), targets(model, val[1]))
    steps = _use_steps_per_execution(model, STEPS_PER_EXECUTION)
    val_batch = VALIDATION_BATCH or batch_size
    history = model.fit(**training_inputs(model, as_model_input(x_train), targets(model, y_train), batch_size),
                        epochs=epochs, validation_data=validation, validation_batch_size=val_batch,
                        callbacks=all_callbacks, verbose=verbose)
    return TrainResult(history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                       epoch_seconds=timer.seconds, images=len(x_train),
                       extra={"steps_per_execution": steps, "validation_batch_size": val_batch})


def training_inputs(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int) -> dict:
    """`fit`'s training data: the arrays, shuffled each epoch by Keras; on TensorFlow (one device)
    the very tf.data pipeline Keras makes of them, with tf.data's autotuning off.

    Why: with autotuning on, about one epoch in three began with 2-3 s in which the process sat
    idle (2-core CPU without AVX-512: the baseline's epochs took 5 s instead of 3, the same CPU
    seconds). Off, no epoch stalled, and the batches, hence the weights, are byte-identical
    (tests/test_training.py checks that against plain `fit` on the arrays). Keras's pipeline is
    reached through keras.src, so a Keras that moves it falls back to the arrays, not to an error.
    """
    plain = {"x": images, "y": labels, "batch_size": batch_size, "shuffle": True}
    if keras.backend.backend() != "tensorflow" or _distributed(model):
        return plain
    try:
        from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    except ImportError:
        return plain
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    data = ArrayDataAdapter(images, labels, batch_size=batch_size, shuffle=True).get_tf_dataset()
    # The pipeline's cardinality is unknown to tf.data (flat_map); callbacks get `steps` as with arrays.
    data = data.apply(tf.data.experimental.assert_cardinality(math.ceil(len(images) / batch_size)))
    # shuffle=False: the pipeline shuffles; Keras would only warn that it ignores True for a dataset.
    return {"x": data.with_options(options), "shuffle": False}


def _distributed(model: keras.Model) -> bool:
    """Under several replicas: a tf.distribute strategy (the TensorFlow trainer's attribute,
    absent on other backends) or a keras.distribution (JAX, runtime.distribution_scope)."""
    strategy = getattr(model, "distribute_strategy", None)
    return int(getattr(strategy, "num_replicas_in_sync", 1)) > 1 or keras.distribution.distribution() is not None


def _use_steps_per_execution(model: keras.Model, steps: int) -> int:
    """Run `steps` training steps per backend call unless compile() chose a value of its own.

    One device only: under a tf.distribute strategy Keras 3's multi-step loop fails
    ("You must feed a value for placeholder tensor", keras-team/keras#19246).
    """
    if steps > 1 and model.steps_per_execution == 1 and not _distributed(model):
        model.steps_per_execution = steps
        # A compiled function made earlier runs one step per call: make fit build new ones.
        model.train_function = model.test_function = model.predict_function = None
    return int(model.steps_per_execution)
