"""All-pairs near-duplicate mining (core.duplicates.neighbours.mine_pairs): time and peak memory.

Each size runs in its own child process, so each peak (VmHWM) is that run's alone.
Data: random unit vectors with 1% planted near-duplicates (cosine ~0.97); threshold 0.9, k 10.
Reference at 10k: the dense way (the full N x N similarity matrix, then top-k per row), which
needs 4 N^2 bytes (40 GB at 100k) and so is not run there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from benchmarks.common import LOWER, emit, note, random_unit_vectors

THRESHOLD, K = 0.9, 10


def planted(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """(n, dim) unit vectors where 1% of rows are noisy copies of others; the copied pairs."""
    x = random_unit_vectors(n, dim, seed)
    rng = np.random.default_rng(seed + 1)
    m = max(1, n // 100)
    src = rng.choice(n // 2, m, replace=False)
    dst = n // 2 + rng.choice(n - n // 2, m, replace=False)
    noise = rng.standard_normal((m, dim), dtype=np.float32) * (0.25 / np.sqrt(dim))
    x[dst] = x[src] + noise
    x[dst] /= np.linalg.norm(x[dst], axis=1, keepdims=True)
    return x, {(int(a), int(b)) for a, b in zip(src, dst, strict=True)}


def dense_pairs(x: np.ndarray, threshold: float, k: int) -> set[tuple[int, int]]:
    """The reference: full similarity matrix, top-k per row, pairs above the threshold."""
    s = x @ x.T  # (N, N)
    np.fill_diagonal(s, -np.inf)
    top = np.argpartition(-s, k, axis=1)[:, :k]  # (N, k)
    rows = np.repeat(np.arange(x.shape[0]), k)
    cols = top.ravel()
    keep = s[rows, cols] >= threshold
    return {(min(a, b), max(a, b)) for a, b in zip(rows[keep].tolist(), cols[keep].tolist(), strict=True)}


def _status_mib(field: str) -> float:
    """A memory line of /proc/self/status in MiB: VmRSS (now) or VmHWM (peak).

    VmHWM is this program's own peak; ru_maxrss is not, since Linux carries it over from the
    forked parent across exec.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    return float("nan")


def child(kind: str, n: int, dim: int) -> dict:
    """Run one measurement in this process and return its figures."""
    from core.duplicates.neighbours import mine_pairs

    x, truth = planted(n, dim)
    before = _status_mib("VmRSS")
    t = time.perf_counter()
    if kind == "project":
        found = {(p.i, p.j) for p in mine_pairs(x, THRESHOLD, k=K)}
    else:
        found = dense_pairs(x, THRESHOLD, K)
    seconds = time.perf_counter() - t
    peak = _status_mib("VmHWM")
    return {"seconds": seconds, "peak_mib": peak, "rss_before_mib": before, "pairs": len(found),
            "planted_found": len(truth & found) / len(truth)}


def _in_child(kind: str, n: int, dim: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.mining", kind, str(n), str(dim)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> None:
    sizes = [(10_000, 512), (100_000, 128), (100_000, 512)]
    if quick:
        sizes = [(10_000, 512), (100_000, 128)]
    for n, dim in sizes:
        note(f"mining {n} x {dim}")
        ours = _in_child("project", n, dim)
        ref = _in_child("dense", n, dim) if n <= 20_000 else None
        common = dict(n=n, dim=dim, k=K, threshold=THRESHOLD, pairs=ours["pairs"],
                      planted_pairs_found=ours["planted_found"])
        emit("mining.seconds", ours["seconds"], "s", better=LOWER,
             reference="dense N x N similarity matrix" if ref else None,
             reference_value=ref["seconds"] if ref else None,
             target="< 60 s at 100k" if n == 100_000 else None,
             reference_note=None if ref else f"dense matrix not run: it needs {4 * n * n / 2**30:.0f} GiB",
             **common)
        emit("mining.peak_memory", ours["peak_mib"], "MiB", better=LOWER,
             reference="dense N x N similarity matrix" if ref else None,
             reference_value=ref["peak_mib"] if ref else None,
             rss_before_mining_mib=ours["rss_before_mib"], vectors_mib=n * dim * 4 / 2**20,
             target="< 2048 MiB at 100k" if n == 100_000 else None,
             note="peak RSS of the whole child process: python, torch (imported by core), the vectors",
             **common)


if __name__ == "__main__":
    kind, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(child(kind, n, dim)))
