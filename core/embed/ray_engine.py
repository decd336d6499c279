"""The Ray engine of `embed-archive`: the same shards, embedded on a Ray cluster (or a local Ray).

Pipeline (Ray Data, streaming):

    file list (driver) -> read + decode to uint8 (CPU tasks) -> embed (a pool of actors, one
    model each; a GPU each with `gpus_per_worker`) -> vectors back to the driver, which writes
    each shard as soon as all its rows have arrived, through the local engine's shard writer.

So a shard still exists whole or not at all, and a re-run (either engine) embeds only the files
no finished shard holds: killing the driver loses the shards in flight, nothing else. Decoded
images travel as uint8 (a quarter of the float bytes); the actor normalises them exactly as the
local engine does (`eval_view` = `normalize(to_uint8_tensor(...))`), folds BatchNorm the same
way and calls the same `embed_tensor`, so both engines give the same vectors.

Ray is imported only here, and this module only when `--engine ray` is asked for.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.embed.shard_format import ArchiveError, ShardInfo, write_shard

DECODE_BATCH = 32  # files per decode task
DECODE_CPUS = 0.5  # CPU share a decode task asks for
BLOCK_ROWS = 256  # file-list rows per input block (the unit Ray streams)


@dataclass(frozen=True)
class RaySettings:
    """Where and how to run: `address` None starts a local Ray on this machine."""

    address: str | None = None
    gpus_per_worker: float = 0.0
    workers: int = 0  # embedding actors; 0: one per GPU share, or CPUs // 2 (at least 1)
    batch_size: int = 64


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

    Args:
        model: the run's SimCLRModel (sent to each actor once).
        image_size: as for the local engine.
        precision: 'auto', 'fp32' or 'bf16', resolved on each actor's own device.
        root: the archive folder (readable at the same path by every Ray worker).
        out: the shard folder (written by this process only).
        plan: (shard number, relative paths) in shard order.
        settings: cluster address, GPUs per actor, actors, batch size.
        on_shard: called after each shard is written.

    Returns:
        Numbers of the shards written, in the order they finished.
    """
    if not plan:
        return []
    import pyarrow as pa
    import torch

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
    actors, threads = _pool(ray, settings)
    blocks = [table.slice(s, BLOCK_ROWS) for s in range(0, table.num_rows, BLOCK_ROWS)]
    ds = ray.data.from_arrow(blocks)
    # Decode needs a different CPU share from the actors, or Ray fuses it into them.
    ds = ds.map_batches(decode_batch, fn_kwargs={"root": str(root), "size": image_size},
                        batch_size=DECODE_BATCH, batch_format="numpy", num_cpus=DECODE_CPUS)
    ds = ds.map_batches(Embedder, fn_constructor_kwargs={
        "model_bytes": buf.getvalue(), "precision": precision, "use_gpu": use_gpu,
        "threads": threads}, batch_size=settings.batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=0 if use_gpu else threads,
        num_gpus=settings.gpus_per_worker if use_gpu else None)
    sizes = {number: len(paths) for number, paths in plan}
    names = dict(plan)
    pending: dict[int, dict] = {}
    written: list[int] = []
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for shard, pos, vector, error in zip(batch["shard"], batch["pos"], batch["vector"],
                                             batch["error"], strict=True):
            entry = pending.setdefault(int(shard), {"vectors": {}, "errors": {}})
            entry["vectors"][int(pos)] = vector
            if error:
                entry["errors"][int(pos)] = str(error)
        for number in [n for n, e in pending.items() if len(e["vectors"]) == sizes[n]]:
            entry = pending.pop(number)
            info = _write(out, number, names[number], entry)
            written.append(number)
            if on_shard is not None:
                on_shard(info)
    if pending:  # every row comes back exactly once; anything else is a Ray fault
        raise ArchiveError(f"Ray returned incomplete shards {sorted(pending)}; run again to resume")
    return written


def _write(out: Path, number: int, paths: list[str], entry: dict) -> ShardInfo:
    bad = entry["errors"]
    keep = [i for i in range(len(paths)) if i not in bad]
    dim = len(next(iter(entry["vectors"].values())))
    vectors = np.array([entry["vectors"][i] for i in keep], np.float32).reshape(len(keep), dim)
    return write_shard(out, number, vectors, [paths[i] for i in keep],
                       [(paths[i], bad[i]) for i in sorted(bad)])


def _pool(ray, settings: RaySettings) -> tuple[int, int]:
    """(embedding actors, torch threads per actor) for the cluster's resources."""
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    if settings.gpus_per_worker > 0:
        gpus = resources.get("GPU", 0)
        if gpus < settings.gpus_per_worker:
            raise ArchiveError(f"the Ray cluster has {gpus:g} GPUs; --gpus-per-worker "
                               f"{settings.gpus_per_worker:g} needs at least that many")
        actors = settings.workers or max(1, int(gpus // settings.gpus_per_worker))
        return actors, 1
    actors = settings.workers or max(1, cpus // 4)
    threads = max(1, (cpus // 2) // actors)  # the other half decodes
    return actors, threads
