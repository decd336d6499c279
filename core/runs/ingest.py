"""Check new films on arrival: embed them, add them to a run's index, flag near-duplicates.

`add_files(run, new_dir)`:
1. lists the images under `new_dir` (as `embed-archive` does: laterals and non-radiograph
   DICOM films are skipped with the reason unless `views` is 'all'); a file whose path the run
   already holds is skipped, so adding the same folder twice adds nothing;
2. embeds the rest with the run's model (unreadable files are skipped with their reason);
3. appends them to the run's embeddings, items and index (any kind) and writes the whole set
   as a new artifact generation (`core.index.artifacts.write_artifact_set`, under the run's
   lock): readers see the old set or the new one, never a mix; the new vectors are made by the
   served set's own checkpoint, so old and new rows come from one model;
4. checks each new file against everything indexed (the archive and the other new files) the
   way the duplicate search does: its k nearest by the index (re-scored exactly) above the
   verification floor are candidates; identical pixels are 'exact'; the others are verified
   geometrically (`core.geometry.verify`, ORB + RANSAC) and a verified one is a 'copy'; the
   rest are flagged 'similar' when the embedding/hash rule flags them. Both rules are those of
   the run's last duplicate search (`duplicates.json`), or the defaults when there is none;
5. appends the flagged pairs to the run's `duplicates.json`, so they join the review queue.

Paths of new files are kept relative to the run's dataset root when they lie under it, else
absolute (every reader joins `root / path`, which keeps an absolute path as it is).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import RunConfig
from core.data.added_films import mark_checked, read_added, record_added
from core.data.dataset import HEADER_CACHE
from core.duplicates.candidates import DEFAULT_HASH_THRESHOLD, DEFAULT_K, CandidatePair
from core.duplicates.hashing import hamming_many, hash_files
from core.duplicates.leakage import LeakageReport
from core.duplicates.proof import DEFAULT_FLOOR, kind_of
from core.duplicates.rules import Rule, VerifyRule
from core.duplicates.search import DuplicateResult, follow_rows, load_result, save_result
from core.embed.embeddings import Embeddings
from core.embed.encoder import Encoder, embed_dataset
from core.embed.shards import archive_listing
from core.geometry.features import image_features
from core.geometry.verify import verify_many
from core.index.artifacts import open_artifact_set, write_artifact_set
from core.index.refine import refine_search
from core.index.vectors import VectorIndex
from core.run_folder import RunError, RunPaths, hold_run_lock

DEFAULT_THRESHOLD = 0.95  # cosine, when the run has no duplicate search to take its rule from


@dataclass(frozen=True)
class AddResult:
    """What `add_files` did: rows added, files skipped (path, reason), flagged pairs."""

    added: int
    skipped: list[tuple[str, str]]
    pairs: list[CandidatePair]
    rule: Rule
    verify_rule: VerifyRule
    rule_source: str  # 'duplicates.json' or 'default'
    seconds: float
    rechecked: int = 0  # films an earlier, killed `add` indexed but never queued


    def contract(self) -> dict:
        """The `add --json` object: added, skipped, pairs [{a, b, score, kind}], and the rule."""
        return {"added": self.added,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
                "pairs": [{"a": p.a, "b": p.b, "score": round(p.score, 6), "kind": p.kind}
                          for p in self.pairs],
                "rule": {"threshold": self.rule.threshold, "hash_threshold": self.rule.hash_threshold,
                         "hash_floor": self.rule.hash_floor,
                         "min_inliers": self.verify_rule.min_inliers,
                         "min_agreement": self.verify_rule.min_agreement,
                         "source": self.rule_source},
                "seconds": round(self.seconds, 2), "rechecked": self.rechecked}


def add_files(run_dir: str | Path, new_dir: str | Path, *, k: int = DEFAULT_K,
              device: str = "cpu", views: str | None = None) -> AddResult:
    """Embed, index and check the images under `new_dir` (see the module notes).

    `views`: 'frontal' leaves laterals and non-radiograph DICOM films out (listed as skipped
    with the reason), 'all' adds them; None: as the run was trained.

    Raises:
        RunError: the run has no embeddings or index yet, or another process holds it.
        ArchiveError: `new_dir` is missing or unreadable.
    """
    started = time.time()
    run = Path(run_dir)
    paths = RunPaths(run)
    if not (paths.config.is_file() and paths.embeddings.is_file() and paths.index.is_file()):
        raise RunError(f"{run} has no embeddings and index yet (training not finished?)")
    with hold_run_lock(paths, exists=True):
        return _add_locked(run, RunPaths(run), new_dir, k, device, started, views)


def _add_locked(run: Path, paths: RunPaths, new_dir: str | Path, k: int, device: str,
                started: float, views: str | None) -> AddResult:
    config = RunConfig.load(paths.config)
    root = Path(config.data).expanduser().resolve()
    served = open_artifact_set(run)  # checked: rows = items = index, one checkpoint
    emb, index = served.embeddings, served.index
    new_root = Path(new_dir).expanduser().resolve()
    known = set(emb.paths)
    # Films indexed by an earlier `add` whose check never reached the queue (killed between
    # the generation switch and the queue write): they are checked again now.
    unchecked = [f.path for f in read_added(paths) if not f.checked and f.path in known]
    listing = archive_listing(new_root, views=views or config.views,
                              header_cache=run / HEADER_CACHE)  # the run's cache: read once
    keys, files = [], []
    skipped = [(_key(new_root / rel, root), reason) for rel, reason in listing.left_out]
    for rel in listing.files:
        key = _key(new_root / rel, root)
        if key in known:
            skipped.append((key, "already indexed"))
        else:
            keys.append(key)
            files.append(new_root / rel)
    rule, verify_rule, source = _rules(run)
    if not files and not unchecked:
        return AddResult(0, skipped, [], rule, verify_rule, source, time.time() - started)
    new_paths: list[str] = []
    if files:
        encoder = Encoder.from_run(run, device, checkpoint=served.checkpoint)
        vectors, bad = embed_dataset(encoder, files, workers=0)  # rows of the readable files only
        keep = [i for i in range(len(files)) if i not in bad]
        skipped += [(keys[i], bad[i]) for i in sorted(bad)]
        new_paths = [keys[i] for i in keep]
    if new_paths:
        record_added(paths, new_paths)  # before indexing: re-embedding keeps them from now on
        emb = Embeddings(emb.paths + new_paths, emb.labels + [""] * len(new_paths),
                         emb.splits + [""] * len(new_paths), emb.patients + [""] * len(new_paths),
                         np.concatenate([emb.vectors, vectors]))
        index.add(vectors)
        write_artifact_set(run, emb, index, served.checkpoint)
    todo = set(unchecked) | set(new_paths)
    rows = [r for r, p in enumerate(emb.paths) if p in todo]
    pairs = check_new(emb, index, root, rows, rule, verify_rule, k, cache=run / "hashes.csv")
    _queue(run, root, emb, pairs, rule)
    mark_checked(paths, todo)
    return AddResult(len(new_paths), skipped, pairs, rule, verify_rule, source,
                     time.time() - started, rechecked=len(unchecked))


def check_new(emb: Embeddings, index: VectorIndex, root: Path, rows: Sequence[int], rule: Rule,
              verify_rule: VerifyRule, k: int = DEFAULT_K, cache: Path | None = None,
              floor: float = DEFAULT_FLOOR) -> list[CandidatePair]:
    """Flagged pairs between the rows to check and any other row (see the module notes).

    Args:
        emb: all rows, the new ones last; index: over the same rows.
        root: dataset root the paths are relative to.
        rows: the rows to check (the new films, and any left unchecked by a killed `add`).
        rule: embedding/hash rule; verify_rule: when a verified pair is a copy.
        k: neighbours per new row; floor: lowest cosine of a candidate.
        cache: pHash cache file.

    Returns:
        Flagged pairs with a < b (paths) and their kind, best score first.
    """
    new_rows = np.asarray(sorted(rows), np.int64)
    if not len(new_rows):
        return []
    found = refine_search(index, emb.vectors[new_rows], k + 1, lambda ids: emb.vectors[ids])
    cand = {}
    for row, ids, scores in zip(new_rows, found.ids, found.scores, strict=True):
        for j, s in zip(ids.tolist(), scores.tolist(), strict=True):
            if j >= 0 and j != row and s >= floor:
                cand[(min(row, j), max(row, j))] = s
    if not cand:
        return []
    rows = sorted({r for pair in cand for r in pair})
    at = {r: x for x, r in enumerate(rows)}
    hashes = hash_files(root, [emb.paths[r] for r in rows], cache=cache)
    i = np.array([at[a] for a, _ in cand])
    j = np.array([at[b] for _, b in cand])
    score = np.array(list(cand.values()), np.float64)
    dist = hamming_many(hashes.phash[i], hashes.phash[j])
    bad = np.zeros(len(rows), bool)
    bad[list(hashes.bad)] = True
    dist = np.where(bad[i] | bad[j], 64, dist)
    flags = rule.flags(score, dist)
    exact = [hashes.exact(int(x), int(y)) for x, y in zip(i, j, strict=True)]
    todo = [p for p in range(len(cand)) if not exact[p]]
    table = image_features(root, [emb.paths[r] for r in rows], workers=1)
    checked = dict(zip(todo, verify_many(table, [(int(i[p]), int(j[p])) for p in todo], workers=1),
                       strict=True))
    out = []
    for p, (a, b) in enumerate(cand):
        inliers, agree, _ = checked.get(p, (None, None, None))
        copy = inliers is not None and bool(verify_rule.passes(np.array(inliers), np.array(agree)))
        if not (flags[p] or exact[p] or copy):
            continue
        pa, pb = (a, b) if emb.paths[a] < emb.paths[b] else (b, a)
        out.append(CandidatePair(emb.paths[pa], emb.paths[pb], int(pa), int(pb), float(score[p]),
                                 int(dist[p]), exact[p], False, False, True,
                                 kind_of(exact[p], copy, True, False), inliers, agree))
    return sorted(out, key=lambda p: (-p.score, p.a, p.b))


def _key(path: Path, root: Path) -> str:
    """A new file's items.csv path: relative to the dataset root when under it, else absolute."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def _rules(run: Path) -> tuple[Rule, VerifyRule, str]:
    """The rules of the run's last duplicate search, or the default fixed ones."""
    result = load_result(run)
    if result is not None:
        return result.rule, result.verify_rule, "duplicates.json"
    return Rule(DEFAULT_THRESHOLD, DEFAULT_HASH_THRESHOLD), VerifyRule(), "default"


def _queue(run: Path, root: Path, emb: Embeddings, pairs: list[CandidatePair], rule: Rule) -> None:
    """Append new pairs (not already listed) to duplicates.json: the review queue reads it.

    The saved pairs' rows are re-pointed at `emb` (the served rows) by path first: an `embed`
    since the last search may have moved them."""
    if not pairs:
        return
    result = load_result(run) or DuplicateResult(run, run, root, "fixed", rule, None, None, 0, [],
                                                 [], LeakageReport([], [], 0))
    listed = {(p.a, p.b) for p in result.pairs}
    merged = result.pairs + [p for p in pairs if (p.a, p.b) not in listed]
    merged.sort(key=lambda p: (-p.score, p.a, p.b))
    save_result(follow_rows(dataclasses.replace(result, pairs=merged), emb.paths))
