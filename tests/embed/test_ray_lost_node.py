"""The Ray engine on real `ray start` clusters on 127.0.0.1: a one-CPU node, and a lost node.

Each cluster is started with `ray start --block` (token auth, its own --temp-dir and ports)
and the run is a real `python -m core embed-archive --engine ray --address ...` process with a
bounded wait, so a hang fails the test instead of hanging it. Every process a cluster starts
carries a marker in its environment (Ray's workers inherit it from their raylet); the finally
kills exactly those.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from core.config import make_run_config
from core.embed.shard_format import finished_shards, read_archive_paths
from core.embed.shards import embed_archive
from core.model.checkpoint import save_checkpoint
from core.model.network import build_model
from core.run_folder import RunPaths

pytest.importorskip("ray")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
MARK = "EMBED_TEST_CLUSTER"  # environment marker of every process a cluster starts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _marked(value: str) -> list[int]:
    """Pids of processes whose environment holds MARK=value (startswith)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(f"{MARK}={value}".encode()) for e in env):
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Cluster:
    """A Ray cluster of `ray start` nodes on 127.0.0.1; `stop` kills every process it started."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.id = tmp, uuid.uuid4().hex[:12]
        self.env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex,
                                 "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
        self.nodes: list[subprocess.Popen] = []
        self.temps: list[Path] = []
        self.address = ""

    def add(self, cpus: int) -> str:
        """Start a node (the first is the head); returns its marker."""
        name = f"n{len(self.nodes)}"
        temp = Path(f"/tmp/rt-{self.id}-{name}")  # short: Ray's socket paths have a length limit
        self.temps.append(temp)
        ports = ["--node-manager-port", "--object-manager-port", "--metrics-export-port",
                 "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--runtime-env-agent-port"]
        cmd = [str(RAY), "start", "--block", "--num-cpus", str(cpus), "--temp-dir", str(temp),
               "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        for flag in ports:
            cmd += [flag, str(_free_port())]
        if not self.nodes:
            port = _free_port()
            self.address = f"127.0.0.1:{port}"
            cmd += ["--head", "--port", str(port), "--include-dashboard", "false"]
        else:
            cmd += ["--address", self.address]
        log = (self.tmp / f"{name}.log").open("wb")
        self.nodes.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env | {MARK: f"{self.id}-{name}"},
                                           start_new_session=True))
        deadline = time.time() + 90
        while b"Ray runtime started" not in (self.tmp / f"{name}.log").read_bytes():
            assert time.time() < deadline and self.nodes[-1].poll() is None, \
                (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        return f"{self.id}-{name}"

    def kill_raylet(self, node: str) -> None:
        """SIGKILL the raylet of one node: the node is lost, as when its machine dies."""
        pids = [p for p in _marked(node) if "raylet/raylet" in _cmdline(p)]
        assert pids, f"no raylet for {node}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    def actors_on(self, node: str) -> list[int]:
        """Pids of the embedding actors living on one node."""
        return [p for p in _marked(node) if "Embedder" in _cmdline(p)]

    def stop(self) -> None:
        for _ in range(3):  # processes may start while others are killed
            for pid in _marked(self.id):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        for node in self.nodes:
            node.wait(timeout=30)
        for temp in self.temps:
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """400 films of 64 px, a tiny run, and the local engine's shards of them (20 of 20)."""
    import torch

    from core.demo.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("lost-node")
    data = write_demo_dataset(root / "images", per_class=100, size=64, seed=0,
                              duplicate_fraction=0.0).root
    config = make_run_config(str(data), "tiny")
    torch.manual_seed(0)
    save_checkpoint(RunPaths(root / "run").best, build_model(config.model), config, epoch=0)
    embed_archive(root / "run", data, root / "local", shard_size=20, precision="fp32",
                  device="cpu", batch_size=8, workers=0)
    return data, root / "run", root / "local"


@pytest.fixture()
def cluster(tmp_path: Path):
    made = Cluster(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def _embed(cluster: Cluster, data: Path, run: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "core", "embed-archive", "--run", str(run), "--data", str(data),
           "--out", str(out), "--shard-size", "20", "--batch-size", "8", "--precision", "fp32",
           "--device", "cpu", "--engine", "ray", "--address", cluster.address, "--no-index",
           *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=cluster.env | {MARK: f"{cluster.id}-driver"})


def _finish(proc: subprocess.Popen, seconds: float) -> tuple[int | None, str]:
    """(exit code, stderr) of `proc`, killed after `seconds` (exit code None: it hung)."""
    try:
        _, err = proc.communicate(timeout=seconds)
        return proc.returncode, err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        return None, proc.communicate()[1].decode(errors="replace")


def _vectors(out: Path) -> np.ndarray:
    return np.concatenate([np.load(s.vectors) for s in finished_shards(out)])


def _same_as_local(out: Path, local: Path) -> None:
    assert read_archive_paths(out) == read_archive_paths(local)
    assert np.abs(_vectors(out) - _vectors(local)).max() <= 1e-3


def test_a_one_cpu_node_holds_an_actor_and_its_decoding(archive, cluster, tmp_path):
    data, run, local = archive
    cluster.add(cpus=1)
    started = time.time()
    code, err = _finish(_embed(cluster, data, run, tmp_path / "out"), 120)
    assert code == 0, f"{'hung' if code is None else 'failed'} after {time.time() - started:.0f} s: " \
                      f"{len(finished_shards(tmp_path / 'out'))} shards; {err[-2000:]}"
    _same_as_local(tmp_path / "out", local)
    assert "20/20 shards" in err and "nodes alive" in err  # the progress lines


def test_losing_the_worker_node_mid_run_still_finishes_with_the_local_vectors(
        archive, cluster, tmp_path):
    data, run, local = archive
    cluster.add(cpus=1)
    worker = cluster.add(cpus=1)
    for attempt in range(3):  # Ray may place every actor on the head: then try a fresh run
        out = tmp_path / f"out{attempt}"
        proc = _embed(cluster, data, run, out)
        deadline = time.time() + 120
        while ((len(finished_shards(out)) < 7 or not cluster.actors_on(worker))
               and proc.poll() is None and time.time() < deadline):
            time.sleep(0.02)
        hosted = cluster.actors_on(worker)
        if hosted and proc.poll() is None:
            break
        _finish(proc, 120)
    cluster.kill_raylet(worker)
    killed, at = time.time(), len(finished_shards(out))
    assert hosted, f"no embedding actor on the worker node ({at} shards written)"
    assert proc.poll() is None and 7 <= at < 20, f"not killed mid-run: {at} shards written"
    code, err = _finish(proc, 150)
    after = time.time() - killed
    assert code == 0, f"{'hung' if code is None else 'failed'} {after:.0f} s after the kill " \
                      f"(at {at} shards): {len(finished_shards(out))} shards; {err[-2000:]}"
    print(f"killed the worker at {at}/20 shards; finished {after:.1f} s later")
    _same_as_local(out, local)


def test_a_three_node_run_that_loses_both_workers_stops_in_one_line_and_resumes(
        archive, cluster, tmp_path):
    data, run, local = archive
    out = tmp_path / "out"
    cluster.add(cpus=0)  # a head that only schedules: the two workers do all the work
    workers = [cluster.add(cpus=1), cluster.add(cpus=1)]
    proc = _embed(cluster, data, run, out, "--stall-timeout", "40")
    deadline = time.time() + 120
    while len(finished_shards(out)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None and len(finished_shards(out)) >= 3, "no shards in 120 s"
    for worker in workers:
        cluster.kill_raylet(worker)
    killed = time.time()
    code, err = _finish(proc, 90)
    assert code not in (None, 0), f"{'hung' if code is None else 'finished'}: {err[-2000:]}"
    assert time.time() - killed < 75
    last = err.strip().splitlines()[-1]
    print(last)
    assert last.startswith("error:") and "run the same command again" in last, err[-2000:]
    assert "Traceback" not in err, err[-4000:]  # nothing but the one line after progress
    kept = len(finished_shards(out))
    assert kept >= 3
    cluster.add(cpus=1)  # a new node: the same command resumes and keeps the finished shards
    code, err = _finish(_embed(cluster, data, run, out), 120)
    assert code == 0, err[-2000:]
    _same_as_local(out, local)


def test_archive_duplicates_on_a_cluster_without_cpus_stops_in_one_line(archive, cluster,
                                                                         tmp_path):
    from core.index.from_shards import build_index_from_shards

    data, _, local = archive
    out = tmp_path / "out"
    shutil.copytree(local, out)
    build_index_from_shards(out, "exact")
    cluster.add(cpus=0)  # a head that only schedules, its workers gone
    cmd = [sys.executable, "-m", "core", "archive-duplicates", "--out", str(out), "--data",
           str(data), "-k", "3", "--engine", "ray", "--address", cluster.address]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=cluster.env | {MARK: f"{cluster.id}-driver"})
    code, err = _finish(proc, 100)
    assert code not in (None, 0), f"{'hung' if code is None else 'finished'}: {err[-2000:]}"
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and "verification tasks" in last, err[-2000:]
    assert "run the same command again" in last
