"""Python's cyclic collector in a stage: devices.select_device loads the backend with it paused,
then freezes what the import built (devices.collector_paused), and stage.run collects rarely
and skips the collection at exit. The collector is back as it was afterwards."""

import gc
import json
import os
import subprocess
import sys

import pytest

from cnnstudy import stage
from cnnstudy.devices import collector_paused
from cnnstudy.params import REPO_ROOT


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()  # back into the oldest generation: other tests see an ordinary heap
    gc.set_threshold(*thresholds)
    (gc.enable if was else gc.disable)()


def test_the_block_runs_without_the_collector_and_what_it_built_is_frozen(collector_on):
    gc.unfreeze()
    with collector_paused():
        assert not gc.isenabled()
        built = [[i] for i in range(20_000)]  # lists are tracked by the collector
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


def test_a_collector_that_was_off_stays_off(collector_on):
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_the_collector_comes_back_when_the_block_raises(collector_on):
    with pytest.raises(RuntimeError):
        with collector_paused():
            raise RuntimeError("import failed")
    assert gc.isenabled()


def test_select_device_imports_keras_and_leaves_the_collector_on():
    child = ("import gc, json, sys\n"
             "from cnnstudy import runtime\n"
             "runtime.select_device('cpu')\n"
             "print(json.dumps({'keras': 'keras' in sys.modules, 'enabled': gc.isenabled(),\n"
             "                  'frozen': gc.get_freeze_count(), 'backend': runtime.backend_name()}))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "KERAS_BACKEND": "tensorflow"}
    out = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state["keras"] and state["enabled"] and state["backend"] == "tensorflow"
    # TensorFlow and Keras leave a few hundred thousand tracked objects; all of them are frozen.
    assert state["frozen"] > 100_000


def test_a_stage_collects_rarely_and_freezes_what_it_leaves_before_exit(collector_on):
    gc.unfreeze()
    seen = {}

    def main():
        seen["thresholds"] = gc.get_threshold()
        seen["left"] = [[i] for i in range(5_000)]

    stage.run(main)
    assert seen["thresholds"] == stage.GC_THRESHOLDS and stage.GC_THRESHOLDS[0] > 700  # 700: Python's default
    assert gc.get_freeze_count() >= 5_000
