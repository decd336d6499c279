"""Data-parallel training: 1 vs 2 processes under torchrun (gloo, CPU), quick preset.

Each run is `torchrun --standalone --nproc_per_node=N -m benchmarks.ddp CHILD ...`, training
the project's Trainer (DDP, negatives gathered across processes) for a few steps at the same
global batch (64: 32 per process with 2). Threads are split between processes so both runs
use the same cores; loader workers are off in both, so only the process count differs.
Value: 2-process images/s; reference: 1 process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import demo_files, emit, note

PRESET = "quick"


def child(images_path: str, run_dir: str, warm: int, steps: int) -> None:
    """One torchrun process: join the group, train a few steps, rank 0 prints images/s."""
    import torch.distributed as dist

    from benchmarks.training import _timed_fit
    from core.config import make_run_config
    from core.device import resolve_precision, setup_cpu
    from core.run_folder import RunPaths
    from core.train.trainer import Trainer

    dist.init_process_group("gloo")
    world, rank = dist.get_world_size(), dist.get_rank()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    setup_cpu()
    images = torch.load(images_path, weights_only=True)  # a tensor this script saved
    config = make_run_config(run_dir, PRESET, weights="none")
    device = torch.device("cpu")
    trainer = Trainer(config, RunPaths(Path(run_dir) / f"rank{rank}"), images, images[:0], device,
                      resolve_precision("auto", device), workers=0)
    rate = _timed_fit(trainer, warm, steps) * world  # each process sees its share of the batch
    dist.barrier()
    if rank == 0:
        print(json.dumps({"images_per_s": rate, "world": world, "threads": torch.get_num_threads(),
                          "local_batch": trainer.local_batch}), flush=True)
    dist.destroy_process_group()


def _torchrun(n: int, images_path: Path, run_dir: Path, warm: int, steps: int) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "benchmarks.ddp", str(images_path), str(run_dir / f"n{n}"), str(warm), str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // n))}
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"torchrun with {n} processes failed: {out.stderr.strip()[-500:]}")
    record = json.loads(out.stdout.strip().splitlines()[-1])
    record["wall_s"] = time.perf_counter() - t
    return record


def run(quick: bool) -> None:
    from core.config import make_run_config
    from core.train.views import decode_images

    warm, steps = (2, 6) if quick else (3, 20)
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        root = Path(tmp)
        t = make_run_config(tmp, PRESET).train
        need = (warm + steps + 1) * t.batch_size
        images, _ = decode_images(demo_files(root, min(need, 256)), int(round(t.image_size * 1.15)))
        images = images.repeat((-(-need // images.shape[0]), 1, 1, 1))[:need]  # (need, 1, S, S)
        images_path = root / "images.pt"
        torch.save(images, images_path)
        note(f"ddp: {PRESET} preset, 1 then 2 processes, {warm}+{steps} steps")
        one = _torchrun(1, images_path, root, warm, steps)
        two = _torchrun(2, images_path, root, warm, steps)
    emit("ddp.train_throughput", two["images_per_s"], "images/s", reference="1 process",
         reference_value=one["images_per_s"], processes=2, threads_per_process=two["threads"],
         reference_threads=one["threads"], global_batch=t.batch_size, px=t.image_size,
         steps=steps, backend="gloo", cores=os.cpu_count(),
         note="on one machine the processes share its cores; DDP pays off across machines/GPUs")


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
