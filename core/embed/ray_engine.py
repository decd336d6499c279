"""The Ray engine of `embed-archive`: the same shards, embedded on a Ray cluster (or a local Ray).

Pipeline (Ray Data, streaming):

    file list (driver) -> read + decode to uint8 (CPU tasks) -> embed (an elastic pool of
    actors, one model each; a GPU each with `gpus_per_worker`) -> vectors back to the driver,
    which writes each shard as soon as all its rows have arrived, through the local engine's
    shard writer (input blocks are no larger than a shard, so rows stream shard by shard).

So a shard still exists whole or not at all, and a re-run (either engine) embeds only the files
no finished shard holds: killing the driver loses the shards in flight, nothing else. Decoded
images travel as uint8 (a quarter of the float bytes); the actor normalises them exactly as the
local engine does (`eval_view` = `normalize(to_uint8_tensor(...))`), folds BatchNorm the same
way and calls the same `embed_tensor`, so both engines give the same vectors.

A lost node: the actor pool is elastic (one actor up to what the alive nodes hold, `fit_pool`;
a decode task asks DECODE_CPUS and a CPU actor at most what the smallest node has left beside
one, so a one-CPU node runs both). Ray Data restarts a lost actor on a node left (its actor
pools default to max_restarts=-1, max_task_retries=-1), Ray reruns a decode task lost with its
node (max_retries 3) and rebuilds lost objects from lineage. A watchdog stops the run in one line
(ArchiveError) when no row comes back for `stall_timeout` seconds or no node can host an actor
for NO_HOST_GRACE seconds: the finished shards stay, and the same command resumes with the pool
fitted to the cluster it then finds. `gather` is the same watchdog for plain Ray tasks.

Ray is imported only here, and this module only when `--engine ray` is asked for.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.embed.shard_format import ArchiveError, ShardInfo, write_shard

DECODE_BATCH = 32  # files per decode task
DECODE_CPUS = 0.25  # CPU share a decode task asks for (a one-CPU node holds it and an actor)
ACTOR_CPUS = 2.0  # CPUs an embedding actor asks for, cut to fit the smallest node
MIN_ACTOR_CPUS = 0.5  # the least an actor is given
STALL_TIMEOUT = 300.0  # seconds without a row before the run stops (--stall-timeout)
NO_HOST_GRACE = 30.0  # seconds with no node able to host an actor before the run stops
WATCH_EVERY = 2.0  # seconds between the watchdog's checks
STOP_WAIT = 10.0  # seconds a stopped run's reader is given to end before Ray shuts down
PROGRESS_EVERY = 15.0  # seconds between progress lines on stderr
BLOCK_ROWS = 256  # file-list rows per input block (the unit Ray streams), at most a shard


@dataclass(frozen=True)
class RaySettings:
    """Where and how to run: `address` None starts a local Ray on this machine."""

    address: str | None = None
    gpus_per_worker: float = 0.0
    workers: int = 0  # most embedding actors; 0: as many as the cluster holds (`fit_pool`)
    batch_size: int = 64
    stall_timeout: float = STALL_TIMEOUT  # seconds without a row before the run stops


def start_ray(address: str | None = None, num_cpus: int | None = None):
    """Connect to a Ray cluster (`auto` or HOST:PORT), or start a local one; returns `ray`.

    An already connected Ray (e.g. a test's) is reused as it is.

    Raises:
        ArchiveError: Ray is not installed, or the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise ArchiveError("the ray engine needs Ray: pip install 'ray[data]'") from None
    if ray.is_initialized():
        return ray
    project = str(Path(__file__).resolve().parents[2])
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        p for p in (project, os.environ.get("PYTHONPATH", "")) if p)}}
    try:
        if address is None:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False, logging_level="warning", runtime_env=env)
        else:
            ray.init(address=address, log_to_driver=False, logging_level="warning",
                     runtime_env=env)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ArchiveError(f"cannot reach the Ray cluster at {address}: {err}") from None
    return ray


def decode_batch(batch: dict[str, np.ndarray], root: str, size: int) -> dict[str, np.ndarray]:
    """Ray task: read and resize each file to (1, size, size) uint8; errors as text."""
    from core.data.imageio import ImageReadError, read_gray
    from core.model.transforms import to_uint8_tensor

    paths = batch["path"]
    pixels = np.zeros((len(paths), 1, size, size), np.uint8)  # (B, 1, S, S)
    errors = []
    for i, rel in enumerate(paths):
        try:
            pixels[i] = to_uint8_tensor(read_gray(Path(root) / str(rel)), size).numpy()
            errors.append("")
        except (ImageReadError, OSError) as err:
            errors.append(str(err) or "unreadable")
    return {"shard": batch["shard"], "pos": batch["pos"], "pixels": pixels,
            "error": np.array(errors, dtype=object)}


class Embedder:
    """Ray actor: holds one model (BatchNorm folded) and embeds decoded batches."""

    def __init__(self, model_bytes: bytes, precision: str, use_gpu: bool, threads: int) -> None:
        from dataclasses import replace

        import torch

        from core.config import ModelConfig
        from core.device import resolve_precision, setup_cpu
        from core.embed.encoder import fold_batchnorm
        from core.model.network import build_model

        setup_cpu()
        torch.set_num_threads(max(1, threads))
        self.device = torch.device("cuda" if use_gpu else "cpu")
        # Weights and the model's settings only (weights_only=True: no pickled code is run).
        ckpt = torch.load(io.BytesIO(model_bytes), map_location="cpu", weights_only=True)
        model = build_model(replace(ModelConfig(**ckpt["config"]), weights="none"))
        model.load_state_dict(ckpt["model"])
        model.eval()
        self.model = fold_batchnorm(model).to(self.device)
        self.precision = resolve_precision(precision, self.device)  # 'auto': bf16 where it pays

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from core.embed.encoder import embed_tensor
        from core.model.transforms import normalize

        x = normalize(torch.from_numpy(np.ascontiguousarray(batch["pixels"])))  # (B, 1, S, S)
        vectors = embed_tensor(self.model, x, self.device, self.precision)  # (B, D)
        vectors[np.array([bool(e) for e in batch["error"]], bool)] = 0.0
        return {"shard": batch["shard"], "pos": batch["pos"], "vector": vectors,
                "error": batch["error"]}


def embed_shards_on_ray(model, image_size: int, precision: str, root: Path, out: Path,
                        plan: Sequence[tuple[int, list[str]]], settings: RaySettings,
                        on_shard: Callable[[ShardInfo], None] | None = None, *,
                        model_config) -> list[int]:
    """Embed the planned shards on Ray and write each one when all its rows are back.

    `model_config` (the run's ModelConfig) travels with the weights so each actor rebuilds
    the network and loads the weights with weights_only=True.

    The pool is elastic (one actor up to what the cluster holds now, `fit_pool`); Ray restarts
    a lost actor and resubmits lost decode tasks on the nodes left. A watchdog stops the run,
    in one line saying what it waited for, when no row comes back for `stall_timeout` seconds
    or no node can host an actor for NO_HOST_GRACE seconds; finished shards are kept, so the
    same command resumes. Progress lines go to stderr.

    Args:
        model: the run's SimCLRModel (sent to each actor once).
        image_size: as for the local engine.
        precision: 'auto', 'fp32' or 'bf16', resolved on each actor's own device.
        root: the archive folder (readable at the same path by every Ray worker).
        out: the shard folder (written by this process only).
        plan: (shard number, relative paths) in shard order.
        settings: cluster address, GPUs per actor, actors, batch size, stall timeout.
        on_shard: called after each shard is written.

    Returns:
        Numbers of the shards written, in shard order (as the local engine's).

    Raises:
        ArchiveError: the cluster cannot host an actor, or stalled (the line says how to resume).
    """
    if not plan:
        return []
    import pyarrow as pa
    import torch

    ours = not _initialized()
    ray = start_ray(settings.address)
    import ray.data  # noqa: F811 (the submodule, after start_ray imported the package)

    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    shard_col, pos_col, path_col = [], [], []
    for number, paths in plan:
        shard_col.extend([number] * len(paths))
        pos_col.extend(range(len(paths)))
        path_col.extend(paths)
    table = pa.table({"shard": pa.array(shard_col, pa.int64()), "pos": pa.array(pos_col, pa.int64()),
                      "path": pa.array(path_col, pa.string())})
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "config": asdict(model_config)}, buf)
    use_gpu = settings.gpus_per_worker > 0
    pool = fit_pool(_alive_nodes(ray), settings)
    step = max(1, min(BLOCK_ROWS, len(plan[0][1])))  # a block no larger than a shard
    blocks = [table.slice(s, step) for s in range(0, table.num_rows, step)]
    ds = ray.data.from_arrow(blocks)
    # Decode needs a different CPU share from the actors, or Ray fuses it into them.
    ds = ds.map_batches(decode_batch, fn_kwargs={"root": str(root), "size": image_size},
                        batch_size=DECODE_BATCH, batch_format="numpy", num_cpus=DECODE_CPUS)
    ds = ds.map_batches(Embedder, fn_constructor_kwargs={
        "model_bytes": buf.getvalue(), "precision": precision, "use_gpu": use_gpu,
        "threads": pool.threads}, batch_size=settings.batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=pool.actors,
                                           initial_size=pool.actors),
        num_cpus=pool.actor_cpus, num_gpus=settings.gpus_per_worker if use_gpu else None)
    sizes = {number: len(paths) for number, paths in plan}
    names = dict(plan)
    pending: dict[int, dict] = {}
    written: list[int] = []
    watch = _Watchdog(ray, settings, pool, len(plan), table.num_rows)
    batches = _batches(ds, watch)
    try:
        for batch in batches:
            for shard, pos, vector, error in zip(batch["shard"], batch["pos"], batch["vector"],
                                                 batch["error"], strict=True):
                entry = pending.setdefault(int(shard), {"vectors": {}, "errors": {}})
                entry["vectors"][int(pos)] = vector
                if error:
                    entry["errors"][int(pos)] = str(error)
            watch.rows += len(batch["shard"])
            for number in [n for n, e in pending.items() if len(e["vectors"]) == sizes[n]]:
                entry = pending.pop(number)
                info = _write(out, number, names[number], entry)
                written.append(number)
                watch.shards += 1
                if on_shard is not None:
                    on_shard(info)
            watch.report()
    except ArchiveError:
        batches.close()  # stops this run's dataset while Ray is still connected
        if ours:  # ends the actors and tasks of this run; a caller's Ray is left to the caller
            ray.shutdown()
        raise
    finally:
        batches.close()
    watch.report(final=True)
    if pending:  # every row comes back exactly once; anything else is a Ray fault
        raise ArchiveError(f"Ray returned incomplete shards {sorted(pending)}; run again to resume")
    return sorted(written)


@dataclass(frozen=True)
class Pool:
    """The embedding actors a cluster can hold now: each asks `actor_cpus` CPUs (and
    `gpus_per_worker` GPUs), runs `threads` torch threads; at most `actors` of them."""

    actors: int
    actor_cpus: float
    threads: int
    hosts: int  # alive nodes that can hold an actor beside a decode task


def fit_pool(nodes: Sequence[dict[str, float]], settings: RaySettings) -> Pool:
    """Size the elastic pool for the alive nodes' resources ({'CPU': n, 'GPU': m} each).

    A CPU actor asks ACTOR_CPUS, cut down to what the smallest node able to embed holds beside
    one decode task, so a one-CPU node runs an actor and its decoding; each node holds one
    actor per ACTOR_CPUS of half its CPUs (at least one), the other half decodes. A GPU actor
    asks `gpus_per_worker` GPUs and no CPU. `settings.workers` caps the pool.

    Raises:
        ArchiveError: no node can host an actor (the line names what one needs).
    """
    if settings.gpus_per_worker > 0:
        share = settings.gpus_per_worker
        gpus = sum(n.get("GPU", 0.0) for n in nodes)
        per_node = [int(n.get("GPU", 0.0) // share) for n in nodes]
        if not any(per_node):
            raise ArchiveError(f"the Ray cluster has {gpus:g} GPUs; --gpus-per-worker {share:g} "
                               "needs a node with at least that many (add one and run the same "
                               "command again: finished shards are kept)")
        return _capped(Pool(sum(per_node), 0.0, 1, sum(1 for k in per_node if k)), settings)
    usable = [c for c in (n.get("CPU", 0.0) for n in nodes) if c >= MIN_ACTOR_CPUS + DECODE_CPUS]
    if not usable:
        cpus = ", ".join(f"{n.get('CPU', 0.0):g}" for n in nodes) or "none"
        raise ArchiveError(f"no node of the Ray cluster can host an embedding actor: one needs "
                           f"{MIN_ACTOR_CPUS + DECODE_CPUS:g} CPUs (alive nodes' CPUs: {cpus}); "
                           "add a node and run the same command again (finished shards are kept)")
    actor_cpus = min(ACTOR_CPUS, min(usable) - DECODE_CPUS)
    actors = sum(max(1, int((c / 2) // actor_cpus)) for c in usable)
    return _capped(Pool(actors, actor_cpus, max(1, int(actor_cpus)), len(usable)), settings)


def _capped(pool: Pool, settings: RaySettings) -> Pool:
    if settings.workers > 0:
        return Pool(min(pool.actors, settings.workers), pool.actor_cpus, pool.threads, pool.hosts)
    return pool


def _initialized() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized()


def _alive_nodes(ray) -> list[dict[str, float]]:
    """Total resources of each alive node of the connected cluster."""
    return [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]


class _Watchdog:
    """Counts rows and shards, prints progress to stderr, and stops a run that cannot go on."""

    def __init__(self, ray, settings: RaySettings, pool: Pool, n_shards: int, n_rows: int) -> None:
        self.ray, self.settings, self.pool = ray, settings, pool
        self.n_shards, self.n_rows = n_shards, n_rows
        self.rows = self.shards = 0
        self.started = self.last_row = self.last_report = time.monotonic()
        self.seen_rows = 0
        self.no_host_since: float | None = None
        self.nodes = len(_alive_nodes(ray))

    def check(self) -> None:
        """Raise ArchiveError when the run stalled or the cluster cannot host an actor."""
        now = time.monotonic()
        if self.rows != self.seen_rows:
            self.seen_rows, self.last_row = self.rows, now
        nodes = _alive_nodes(self.ray)
        self.nodes = len(nodes)
        try:
            fit_pool(nodes, self.settings)
            self.no_host_since = None
        except ArchiveError as err:
            self.no_host_since = self.no_host_since or now
            if now - self.no_host_since >= min(NO_HOST_GRACE, self.settings.stall_timeout):
                raise ArchiveError(f"stopped after {self.shards}/{self.n_shards} shards: {err}"
                                   ) from None
        if now - self.last_row >= self.settings.stall_timeout:
            raise ArchiveError(
                f"stopped after {self.shards}/{self.n_shards} shards: no row came back from the "
                f"Ray cluster for {self.settings.stall_timeout:g} s (waiting for an embedding "
                f"actor, {self.pool.actor_cpus:g} CPUs each, and decode tasks; {self.nodes} "
                "nodes alive); run the same command again to resume (finished shards are kept)")
        self.report()

    def report(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last_report < PROGRESS_EVERY:
            return
        self.last_report = now
        rate = self.rows / max(now - self.started, 1e-9)
        sys.stderr.write(f"embed-archive (ray): {self.shards}/{self.n_shards} shards, "
                         f"{self.rows}/{self.n_rows} rows, {rate:.1f} rows/s, "
                         f"{self.nodes} nodes alive\n")
        sys.stderr.flush()


def _batches(ds, watch: _Watchdog):
    """`ds`'s output batches, read by a helper thread so the watchdog can check on each wait.

    Left early (the watchdog stopped the run, or the caller closed it), it first shuts down
    Ray Data's executor of this dataset and waits for the reader to end, all while Ray is
    still connected: a reader left running past `ray.shutdown` would log Ray Data's failing
    stats calls as tracebacks after the run's one line, and its next Ray call would connect
    the process to the cluster again (Ray's auto-init).
    """
    box: queue.Queue = queue.Queue(maxsize=4)
    done, stop = object(), threading.Event()
    before = set(threading.enumerate())

    def hand(item) -> None:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def pump() -> None:
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                if stop.is_set():
                    return
                hand(batch)
        except BaseException as err:  # noqa: BLE001 (handed to the caller's thread)
            hand(err)
        hand(done)

    reader = threading.Thread(target=pump, name="ray-embed-reader", daemon=True)
    reader.start()
    finished = False
    try:
        while True:
            try:
                item = box.get(timeout=WATCH_EVERY)
            except queue.Empty:
                watch.check()
                continue
            if item is done:
                finished = True
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            watch.check()
    finally:
        if not finished:
            _stop_reader(reader, stop, before)


def _stop_reader(reader: threading.Thread, stop: threading.Event, before: set) -> None:
    """End a run's reader thread early: its dataset's executors are shut down (Ray Data runs
    each as a thread; only those started since `before`), and the reader is given
    STOP_WAIT seconds. Ray Data's warnings while it winds down are not shown (its logger at
    ERROR): the run already stops with its own line."""
    from ray.data._internal.execution.streaming_executor import StreamingExecutor

    stop.set()
    data_log = logging.getLogger("ray.data")
    level = data_log.level
    data_log.setLevel(logging.ERROR)
    try:
        for thread in set(threading.enumerate()) - before:
            if isinstance(thread, StreamingExecutor):
                thread.shutdown(force=True)
        reader.join(timeout=STOP_WAIT)
    finally:
        data_log.setLevel(level)


def _write(out: Path, number: int, paths: list[str], entry: dict) -> ShardInfo:
    bad = entry["errors"]
    keep = [i for i in range(len(paths)) if i not in bad]
    dim = len(next(iter(entry["vectors"].values())))
    vectors = np.array([entry["vectors"][i] for i in keep], np.float32).reshape(len(keep), dim)
    return write_shard(out, number, vectors, [paths[i] for i in keep],
                       [(paths[i], bad[i]) for i in sorted(bad)])


def gather(ray, refs: Sequence, *, cpus: float, what: str,
           stall_timeout: float = STALL_TIMEOUT) -> list:
    """`ray.get(refs)`, but stopped in one line instead of waiting for ever.

    Ray retries a task lost with its node on the nodes left; this stops the wait when no task
    finishes for `stall_timeout` seconds, or when no alive node has `cpus` CPUs for
    NO_HOST_GRACE seconds (the line names what it waited for and how to resume).

    Raises:
        ArchiveError: the cluster stalled or cannot run the tasks.
    """
    pending, done = list(refs), 0
    last = time.monotonic()
    no_host_since: float | None = None
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=WATCH_EVERY)
        now = time.monotonic()
        if ready:
            done, last = done + len(ready), now
        nodes = _alive_nodes(ray)
        if any(n.get("CPU", 0.0) >= cpus for n in nodes):
            no_host_since = None
        else:
            no_host_since = no_host_since or now
        if no_host_since is not None and now - no_host_since >= min(NO_HOST_GRACE, stall_timeout):
            cause = f"no node of the Ray cluster has the {cpus:g} CPU a task needs ({len(nodes)} alive)"
        elif now - last >= stall_timeout:
            cause = f"no task finished for {stall_timeout:g} s ({len(nodes)} nodes alive)"
        else:
            continue
        raise ArchiveError(f"stopped after {done}/{len(refs)} {what}: {cause}; add a node and run "
                           "the same command again")
    return ray.get(list(refs))
