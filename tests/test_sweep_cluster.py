"""Scale, proven: a real two-node Ray cluster on 127.0.0.1 (`ray start --head` and a second
`ray start --address`), a tiny sweep sent to it through sweep.address, trials on both nodes.

The cluster runs in its own temp dir; teardown kills only the processes started for it
(found by that dir in their command lines), never every Ray on the machine (`ray stop` would).
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from cnnstudy.sweep_cache import TrialCache
from cnnstudy.sweep_run import run_sweep
from sweep_helpers import sweep_params, tiny_train, write_prepared

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_args(temp: str, worker_ports: int) -> list[str]:
    """Every port a node opens chosen free, so two nodes (and other Rays) share one host."""
    return ["--num-cpus=1", "--num-gpus=0", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}",
            "--object-store-memory=80000000", "--disable-usage-stats",
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
            f"--min-worker-port={worker_ports}", f"--max-worker-port={worker_ports + 99}"]


def start(args: list[str], env: dict) -> None:
    proc = subprocess.run([RAY, "start", *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"ray start {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def processes_under(temp: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp in part for part in proc.info["cmdline"] or []):
                found.append(proc)
                found.extend(proc.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return list({p.pid: p for p in found}.values())


@pytest.fixture(scope="module")
def cluster():
    # A short path: Ray's unix sockets live under it and must stay under 108 characters.
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    # Token authentication with a token of this test's own, for both nodes and the driver (this process).
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    saved = {key: os.environ.get(key) for key in auth}
    os.environ.update(auth)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    port = free_port()
    try:
        start(["--head", f"--port={port}", "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
               *node_args(temp, 23000)], env)
        start([f"--address=127.0.0.1:{port}", *node_args(temp, 23100)], env)
        yield f"127.0.0.1:{port}"
    finally:
        procs = processes_under(temp)
        for proc in procs:
            with_signal(proc, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=15)
        for proc in alive:
            with_signal(proc, signal.SIGKILL)
        subprocess.run(["rm", "-rf", temp], check=False)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        # Ray caches the auth mode and token in this process: drop them, or the next test's local
        # Ray (started without this token) refuses its own driver with InvalidAuthToken.
        from ray._private.authentication_test_utils import reset_auth_token_state

        reset_auth_token_state()


def with_signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


def test_trials_run_on_both_nodes_of_a_cluster(cluster, tmp_path, digits, tiny):
    import ray

    prepared = write_prepared(tmp_path / "prepared", *digits)
    train = tiny_train(tiny)
    sweep = sweep_params(train, {"optimizer": ["adam", "sgd"], "lr": [0.001, 0.01]}, address=cluster)
    started = time.perf_counter()
    outcome = run_sweep(sweep, train, prepared, TrialCache(tmp_path / "cache"))
    assert not ray.is_initialized()  # attached, then detached: the cluster was not ours to keep
    assert (outcome.trained, outcome.cached) == (4, 0)
    assert len(outcome.nodes) == 2, f"trials ran on {outcome.nodes}"
    assert all(r["node_ip"] and r["pid"] > 0 for r in outcome.rows)
    ray.init(address=cluster, logging_level="ERROR")
    try:
        cluster_nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
    assert set(outcome.nodes) == cluster_nodes  # the head and the second node, each ran trials
    print(f"4 trials on a 2-node cluster in {time.perf_counter() - started:.1f} s")
