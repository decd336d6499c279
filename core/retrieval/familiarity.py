"""Scores people can read: where a query's cosine falls among this dataset's own best matches.

Cosines of one model cluster in a narrow band (0.93-0.99 for everything), so a raw score says
little. Each dataset image's best match among the others gives the dataset's own
nearest-neighbour distribution; a query's best cosine is placed in it as a percentile, and a
query whose best match is below what nearly every dataset image gets is "unlike anything in
this dataset". The distribution is computed once per run and kept beside its embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.files import atomic_write_json, read_json
from core.run_folder import RunPaths

PROFILE_FILE = "neighbour_scores.json"
SAMPLE = 2_000  # dataset images whose best match is measured (all of them below this)
UNLIKE_PERCENTILE = 1  # a best match below the 1st percentile is "unlike this dataset"
_CHUNK = 512


@dataclass(frozen=True)
class ScoreProfile:
    """The dataset's own best-match cosines, as 101 quantiles (0th..100th percentile)."""

    quantiles: tuple[float, ...]
    n_images: int  # images whose best match was measured

    def percentile(self, score: float) -> float:
        """Percent of the dataset's images whose best match scores below `score` (0..100)."""
        q = np.asarray(self.quantiles)
        if score <= q[0]:
            return 0.0
        if score >= q[-1]:
            return 100.0
        # quantiles are non-decreasing; ties make flat steps, so take the step's upper end
        return float(np.interp(score, q, np.linspace(0.0, 100.0, q.size), left=0.0, right=100.0))

    @property
    def unlike_below(self) -> float:
        """Best-match cosine under which a query is unlike anything in this dataset."""
        return float(self.quantiles[UNLIKE_PERCENTILE]) if self.quantiles else -1.0


@dataclass(frozen=True)
class Familiarity:
    """A query's best match read against the dataset's own best matches."""

    best: float
    percentile: float
    unlike: bool


def best_match_scores(vectors: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """For each row of `rows`, the highest cosine to any other row of `vectors`.

    Args:
        vectors: (N, D) unit vectors.
        rows: (M,) rows to measure (None: all).

    Returns:
        (M,) float64 cosines; -1 when N == 1.
    """
    v = np.asarray(vectors, np.float32)
    rows = np.arange(len(v)) if rows is None else np.asarray(rows, np.int64)
    out = np.full(rows.size, -1.0)
    if len(v) < 2:
        return out
    for start in range(0, rows.size, _CHUNK):
        chunk = rows[start:start + _CHUNK]
        sims = v[chunk] @ v.T  # (c, N)
        sims[np.arange(chunk.size), chunk] = -np.inf  # not itself
        out[start:start + chunk.size] = sims.max(axis=1)
    return out


def profile_from_vectors(vectors: np.ndarray, sample: int = SAMPLE, seed: int = 0) -> ScoreProfile:
    """The best-match distribution of (a seeded sample of) the dataset's images."""
    n = len(vectors)
    rows = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed).choice(n, sample, False))
    best = best_match_scores(vectors, rows)
    q = np.percentile(best, np.arange(101)) if best.size else np.array([])
    return ScoreProfile(tuple(round(float(x), 6) for x in q), int(best.size))


def score_profile(run_dir: str | Path, vectors: np.ndarray | None = None) -> ScoreProfile:
    """The run's profile, computed once per embeddings file and kept in the run folder.

    Args:
        run_dir: the run.
        vectors: its embedding vectors when already loaded (else read from the run).
    """
    paths = RunPaths(Path(run_dir))
    stat = paths.embeddings.stat()
    stamp = f"{stat.st_mtime_ns}:{stat.st_size}"
    path = paths.root / PROFILE_FILE
    saved = read_json(path, default=None)
    if isinstance(saved, dict) and saved.get("embeddings") == stamp and saved.get("quantiles"):
        return ScoreProfile(tuple(saved["quantiles"]), int(saved.get("n_images", 0)))
    if vectors is None:
        vectors = np.load(paths.embeddings, mmap_mode="r", allow_pickle=False)
    profile = profile_from_vectors(np.asarray(vectors))
    try:
        atomic_write_json(path, {"embeddings": stamp, "quantiles": list(profile.quantiles),
                                 "n_images": profile.n_images})
    except OSError:
        pass  # a read-only run still answers; it recomputes next time
    return profile


def familiarity_of(profile: ScoreProfile, best: float) -> Familiarity:
    """Place a query's best cosine in the dataset's own distribution."""
    return Familiarity(float(best), profile.percentile(best), bool(profile.quantiles)
                       and best < profile.unlike_below)
