"""Image statistics of a run's films (grey histogram, Laplacian variance, colour), measured
once and kept in the run folder.

Each film is read once through `core.data.access.dataset_file` (inside the dataset folder or
the allowed roots) as the model sees it (`load_image`: DICOM windowed), scaled to
MEASURE_SIDE on its long side, and measured. The figures go to STATS_FILE in the run folder,
each keyed by the film's path, size and mtime, so a page reads them instead of the films and
only new or changed films are measured again. The file is rewritten atomically.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.access import dataset_file
from core.data.imageio import ImageReadError, load_image, to_uint8
from core.data.plausibility import colourfulness
from core.files import atomic_write_bytes
from core.quality.blur import laplacian_variance
from core.quality.histogram import BINS, grey_histogram

MEASURE_SIDE = 256  # long side the figures are measured at, so film sizes compare
STATS_FILE = "quality-stats.npz"  # in the run folder, beside the served generations


@dataclass(frozen=True)
class FilmStats:
    """What was measured on one film; `problem` (one line) when it could not be read, the
    figures then None."""

    hist: np.ndarray | None  # (256,) counts of each grey level at MEASURE_SIDE
    laplacian: float | None
    colour: float | None  # mean channel spread, 0..1 (0 for grey and DICOM files)
    problem: str = ""


@dataclass(frozen=True)
class RunStats:
    """The statistics of a run's films, in items.csv order (None: not measured yet)."""

    films: tuple[FilmStats | None, ...]

    @property
    def n_missing(self) -> int:
        return sum(s is None for s in self.films)

    def unreadable(self, paths: Sequence[str]) -> list[tuple[str, str]]:
        """(path, one line) of each film that could not be read."""
        return [(p, s.problem) for p, s in zip(paths, self.films, strict=True) if s is not None and s.problem]


def measure_pixels(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """Grey histogram and Laplacian variance of (H, W) pixels in [0, 1], scaled (area
    averaging) to MEASURE_SIDE on the long side first."""
    im = Image.fromarray(to_uint8(pixels), mode="L")
    scale = MEASURE_SIDE / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BOX)
    gray = np.asarray(im)
    return grey_histogram(gray), laplacian_variance(gray)


def measure_film(path: Path, name: str) -> FilmStats:
    """A film's figures; FilmStats(problem=...) when it cannot be read."""
    try:
        pixels = load_image(path, name=name, max_side=4 * MEASURE_SIDE).pixels
    except ImageReadError as e:
        return FilmStats(None, None, None, str(e).splitlines()[0] if str(e) else "cannot be read")
    hist, lap = measure_pixels(pixels)
    return FilmStats(hist, lap, colourfulness(path))


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def run_stats(run_dir: str | Path, data_root: str | Path, paths: Sequence[str],
              roots: tuple[Path, ...] = (), measure: bool = False,
              progress: Callable[[int, int], None] | None = None) -> RunStats:
    """The statistics of `paths` (a run's films), from STATS_FILE where current.

    Args:
        run_dir: the run folder (holds STATS_FILE).
        data_root: the run's dataset folder; roots: the allowed roots (`dataset_file`).
        paths: the films as items.csv names them.
        measure: read and measure the films not in the file (or changed since), then save;
            False: leave them None.
        progress: called with (done, to_measure) after each film measured.
    """
    file = Path(run_dir) / STATS_FILE
    cached = read_stats(file)
    out: list[FilmStats | None] = []
    todo: list[tuple[int, Path, str, str]] = []
    for i, rel in enumerate(paths):
        try:
            full = dataset_file(data_root, rel, roots)
            stamp = _stamp(full)
        except ImageReadError as e:
            out.append(FilmStats(None, None, None, str(e)))
            continue
        except OSError as e:  # missing or unreadable: not kept, so a restored film is measured
            out.append(FilmStats(None, None, None, f"{rel}: cannot open file ({e.strerror or e})"))
            continue
        hit = cached.get(rel)
        out.append(hit[1] if hit is not None and hit[0] == stamp else None)
        if out[-1] is None:
            todo.append((i, full, rel, stamp))
    if not measure or not todo:
        return RunStats(tuple(out))
    stamps = {rel: hit[0] for rel, hit in cached.items()}
    for n, (i, full, rel, stamp) in enumerate(todo, 1):
        out[i] = measure_film(full, rel)
        stamps[rel] = stamp
        if progress is not None:
            progress(n, len(todo))
    kept = {**cached, **{rel: (stamps[rel], out[i]) for i, _, rel, _ in todo}}
    try:
        write_stats(file, kept)
    except OSError:  # a read-only run folder: measured for this call only
        pass
    return RunStats(tuple(out))


def write_stats(file: Path, entries: dict[str, tuple[str, FilmStats]]) -> None:
    """STATS_FILE from {path: (stamp, FilmStats)}, written atomically."""
    names = sorted(entries)
    stats = [entries[n][1] for n in names]
    buf = io.BytesIO()
    np.savez_compressed(
        buf, path=np.array(names, dtype=str), stamp=np.array([entries[n][0] for n in names], dtype=str),
        hist=np.array([s.hist if s.hist is not None else np.zeros(BINS) for s in stats], dtype=np.int64
                      ).reshape(len(names), BINS),
        laplacian=np.array([np.nan if s.laplacian is None else s.laplacian for s in stats], dtype=np.float64),
        colour=np.array([np.nan if s.colour is None else s.colour for s in stats], dtype=np.float64),
        problem=np.array([s.problem for s in stats], dtype=str))
    atomic_write_bytes(file, buf.getvalue())


def read_stats(file: Path) -> dict[str, tuple[str, FilmStats]]:
    """{path: (stamp, FilmStats)} from STATS_FILE; {} when it is missing or damaged (the
    films are then measured again)."""
    try:
        with np.load(file, allow_pickle=False) as z:
            cols = {k: z[k] for k in ("path", "stamp", "hist", "laplacian", "colour", "problem")}
    except (OSError, ValueError, KeyError, EOFError):
        return {}
    n = len(cols["path"])
    if any(len(v) != n for v in cols.values()) or cols["hist"].shape != (n, BINS):
        return {}
    out = {}
    for i in range(n):
        problem = str(cols["problem"][i])
        out[str(cols["path"][i])] = (str(cols["stamp"][i]), FilmStats(
            None if problem else cols["hist"][i], None if problem else float(cols["laplacian"][i]),
            None if problem else float(cols["colour"][i]), problem))
    return out
