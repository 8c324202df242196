"""Data parallelism through the backend's own API: build, compile and fit inside `distribution_scope`.

keras.backend.clear_session() (the kfold stage calls it before each fold) drops the scope;
`restore_distribution` (called by runtime.seed_everything and runtime.clear_session) enters it again.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from cnnstudy.devices import backend_name

# The scope distribution_scope entered, so that restore_distribution can enter it again.
_state: dict = {"tf_strategy": None, "tf_scopes": [], "jax_distribution": None}
_strategy_cache: dict = {}


def tf_strategy(device: str):
    """The tf.distribute strategy for this process, made once (TensorFlow allows one MWMS)."""
    key = "multi-worker" if os.environ.get("TF_CONFIG") else device
    if key in _strategy_cache:
        return _strategy_cache[key]
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        # One replica per local GPU on each worker; workers from TF_CONFIG's cluster.
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")] if device == "gpu" else []
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy(gpus)
        elif not gpus and len(cpus) > 1:
            # Only when the CPU was split into logical devices on purpose (devices.split_cpu):
            # that is how the mirrored path is tested on a machine without GPUs.
            strategy = tf.distribute.MirroredStrategy(cpus)
        else:
            strategy = tf.distribute.get_strategy()  # the default: one device, no-op scope
    _strategy_cache[key] = strategy
    return strategy


def _jax_distribution():
    import jax
    import keras

    if jax.process_count() > 1 or jax.local_device_count() > 1:
        # Multi-host JAX needs keras.distribution.initialize() first (JAX_COORDINATOR_ADDRESS etc.).
        return keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    return None


@contextlib.contextmanager
def distribution_scope(device_info: dict) -> Iterator[dict]:
    """Data parallelism through the backend's own API; build, compile and fit inside it.

    TensorFlow: MultiWorkerMirroredStrategy when TF_CONFIG is set, MirroredStrategy over
    all local GPUs when there are several (or over the logical CPUs of split_cpu), else
    none (one device). JAX: keras.distribution.DataParallel over all devices when there
    are several. Keras splits each batch of cfg.batch_size images across the replicas
    (batch_size stays the global batch) and sums their gradients.

    Yields {"strategy": name, "replicas": n} for the stage's metrics.
    """
    backend = backend_name()
    if backend == "tensorflow":
        strategy = tf_strategy(device_info.get("device", "cpu"))
        name = type(strategy).__name__
        if name == "CollectiveAllReduceStrategy":  # what MultiWorkerMirroredStrategy() is in TF 2
            name = "MultiWorkerMirroredStrategy"
        if name.startswith("_Default"):
            yield {"strategy": "default", "replicas": 1}
            return
        _state["tf_strategy"], _state["tf_scopes"] = strategy, []
        _enter_tf_scope()
        try:
            yield {"strategy": name, "replicas": int(strategy.num_replicas_in_sync)}
        finally:
            _exit_tf_scopes()
        return
    if backend == "jax":
        distribution = _jax_distribution()
        if distribution is not None:
            _state["jax_distribution"] = distribution
            try:
                with distribution.scope():
                    yield {"strategy": "DataParallel", "replicas": int(distribution.num_model_replicas)}
            finally:
                _state["jax_distribution"] = None
            return
    yield {"strategy": "default", "replicas": 1}


def _enter_tf_scope() -> None:
    import tensorflow as tf

    scope = _state["tf_strategy"].scope()
    scope.__enter__()
    # A tf.distribute scope lives on the default graph, which clear_session replaces.
    _state["tf_scopes"].append((scope, tf.compat.v1.get_default_graph()))


def _exit_tf_scopes() -> None:
    import tensorflow as tf

    scopes, _state["tf_scopes"], _state["tf_strategy"] = _state["tf_scopes"], [], None
    graph = tf.compat.v1.get_default_graph()
    for scope, scope_graph in reversed(scopes):
        if scope_graph is graph:  # the others went with the graph clear_session discarded
            scope.__exit__(None, None, None)


def restore_distribution() -> None:
    """Enter distribution_scope's scope again if keras.backend.clear_session() dropped it."""
    if _state["tf_strategy"] is not None:
        import tensorflow as tf

        if not tf.distribute.has_strategy():
            _enter_tf_scope()
    if _state["jax_distribution"] is not None:
        import keras

        if keras.distribution.distribution() is None:
            keras.distribution.set_distribution(_state["jax_distribution"])
