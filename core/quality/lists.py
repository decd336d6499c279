"""A run's quality lists: outliers and likely label errors from its embedding, exposure, blur
and near-empty or non-radiograph films from its films' image statistics.

The films are the run's one record (items.csv, through `Embeddings.load`); the dataset folder
is the run's config's. The image lists wait for the statistics (`run_stats`) until they are
measured, unless `measure` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import RunConfig
from core.embed.embeddings import Embeddings
from core.quality import blur, content, exposure
from core.quality.findings import FindingList
from core.quality.label_errors import find_label_errors
from core.quality.neighbours import nearest_neighbours
from core.quality.outliers import K as OUTLIER_K
from core.quality.outliers import find_outliers
from core.quality.stats import RunStats, run_stats
from core.run_folder import RunPaths

LIMIT = 60  # films kept per list (worst first)


@dataclass(frozen=True)
class RunQuality:
    """The five lists of one run, and how many of its films were measured."""

    lists: tuple[FindingList, ...]
    n_films: int
    n_unmeasured: int  # films without image statistics yet (the image lists wait for them)
    unreadable: tuple[tuple[str, str], ...]  # (path, one line) of films that could not be read
    data_root: Path

    def get(self, name: str) -> FindingList:
        """The list called `name` (outliers, label_errors, exposure, blur, content)."""
        return next(x for x in self.lists if x.name == name)


def embedding_lists(emb: Embeddings, limit: int | None = LIMIT) -> list[FindingList]:
    """Outliers and likely label errors of a run's embedding."""
    _, sims = nearest_neighbours(emb.vectors, OUTLIER_K)
    return [find_outliers(emb.paths, emb.labels, sims, limit),
            find_label_errors(emb.paths, emb.labels, emb.vectors, limit=limit)]


def image_lists(emb: Embeddings, stats: RunStats, limit: int | None = LIMIT) -> list[FindingList]:
    """Exposure, blur and content lists from the films' statistics (pending where none is
    measured yet)."""
    if stats.n_missing:
        return [FindingList(name, m.TITLE, m.MEANING, pending=True)
                for name, m in (("exposure", exposure), ("blur", blur), ("content", content))]
    films = stats.films  # every film measured (a film not read: its figures None)
    hists = [s.hist for s in films]
    return [exposure.find_exposure(emb.paths, emb.labels, hists, limit),
            blur.find_blur(emb.paths, emb.labels, [s.laplacian for s in films], limit),
            content.find_content(emb.paths, emb.labels, hists, [s.colour for s in films], limit)]


def run_quality(run_dir: str | Path, roots: tuple[Path, ...] = (), measure: bool = False,
                progress: Callable[[int, int], None] | None = None,
                limit: int | None = LIMIT) -> RunQuality:
    """The quality lists of a run.

    Args:
        run_dir: the run folder.
        roots: the allowed roots films added from elsewhere may lie in (`dataset_file`).
        measure: measure films without statistics (and save them); False: the image lists
            wait (`pending`) while any film is unmeasured.
        progress: (done, total) after each film measured.
        limit: films kept per list.

    Raises:
        RunError, ConfigError: the run's embeddings or config are missing or damaged (one line).
    """
    paths = RunPaths(run_dir)
    emb = Embeddings.load(run_dir, paths)
    data_root = Path(RunConfig.load(paths.config).data)
    stats = run_stats(paths.root, data_root, emb.paths, roots, measure=measure, progress=progress)
    lists = embedding_lists(emb, limit) + image_lists(emb, stats, limit)
    return RunQuality(tuple(lists), len(emb), stats.n_missing, tuple(stats.unreadable(emb.paths)), data_root)
