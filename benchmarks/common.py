"""What every benchmark shares: JSON-line records, timing, the machine, the matmul peak.

Each figure is printed as one JSON object per line:
    name, value, unit                 the project's figure
    reference, reference_value        a plain implementation measured in the same process
    ratio                             oriented so that higher is better for the project
    machine fields and any extras     (n, dim, px, ...)
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HIGHER = "higher"  # a bigger value is better (throughput)
LOWER = "lower"  # a smaller value is better (latency, seconds, memory)

_sink: list[Any] = []  # extra files each record is also written to (see `tee_to`)


@dataclass(frozen=True)
class Machine:
    """Where the figures were measured."""

    cpu: str
    cores: int
    torch_threads: int
    load_1min: float
    python: str


def machine() -> Machine:
    """CPU model name (lscpu's), logical cores, torch threads and the current load average."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return Machine(cpu, os.cpu_count() or 1, torch.get_num_threads(), round(load, 2),
                   platform.python_version())


def tee_to(f: Any) -> None:
    """Also write every record to the open text file `f`."""
    _sink.append(f)


def emit(name: str, value: float, unit: str, *, reference: str | None = None,
         reference_value: float | None = None, better: str = HIGHER, **fields: Any) -> dict:
    """Print one figure as a JSON line (and to any `tee_to` files); return the record.

    Args:
        name: what was measured, e.g. "embed.images_per_s".
        value: the project's figure.
        unit: its unit ("images/s", "ms", "s", "MiB", ...).
        reference: what the reference is, in words (e.g. "plain fp32 loop").
        reference_value: the reference's figure in the same unit.
        better: HIGHER or LOWER, which direction is better for `value`; sets `ratio`.
        **fields: extras (n, dim, px, notes).

    Returns:
        The record as printed.
    """
    record: dict[str, Any] = {"name": name, "value": _round(value), "unit": unit}
    if reference is not None and reference_value is not None:
        record["reference"] = reference
        record["reference_value"] = _round(reference_value)
        if value and reference_value:
            ratio = value / reference_value if better == HIGHER else reference_value / value
            record["ratio"] = round(ratio, 3)
    record.update({k: _round(v) for k, v in fields.items()})
    line = json.dumps(record)
    print(line, flush=True)
    for f in _sink:
        f.write(line + "\n")
        f.flush()
    return record


def note(text: str) -> None:
    """A progress line on stderr, so stdout stays pure JSON lines."""
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4) if abs(v) < 100 else round(v, 1)
    return v


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of `fn`, `repeats` times after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def percentile(xs: list[float], q: float) -> float:
    """The q-th percentile (0..100) of xs, linear interpolation."""
    import numpy as np

    return float(np.percentile(np.asarray(xs), q))


def matmul_peak_gflops(dtype: str = "fp32", n: int = 2048, repeats: int = 7) -> float:
    """Median GFLOP/s of an (n x n) @ (n x n) torch.mm on all torch threads (2 n^3 FLOP)."""
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
    times = time_calls(lambda: torch.mm(a, b), repeats, warmup=2)
    return 2 * n**3 / median(times) / 1e9


def random_unit_vectors(n: int, dim: int, seed: int = 0):
    """(n, dim) float32 rows uniform on the unit sphere."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def demo_files(root: Path, n_min: int, size: int = 256) -> list[Path]:
    """Synthetic demo radiographs written to `root` (PNG, on disk); at least n_min files.

    The demo set is kept small (writing a phantom costs ~20 ms) and its file list repeated,
    so the benchmark still reads and decodes a file from disk for every image.
    """
    from core.demo.dataset import write_demo_dataset

    per_class = max(2, min(32, n_min // 4))
    summary = write_demo_dataset(root / f"demo-{per_class}-{size}", per_class=per_class,
                                 size=size, seed=0)
    files = sorted(p for p in summary.root.rglob("*") if p.suffix in (".png", ".jpg"))
    reps = -(-n_min // len(files))
    return (files * reps)[:n_min]
