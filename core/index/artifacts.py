"""A run's served files as one versioned set: the checkpoint, embeddings, items and index.

Each embedding pass writes a new generation beside the one being served,
`<run>/artifacts/g000007/` holding `model.pt` (a hard link to the checkpoint that made the
vectors, so retraining cannot change it), `embeddings.npy`, `labels.npy`, `items.csv`, the
test split's arrays, `index.faiss` (+ `.json`) and last `manifest.json` (generation, row
count, dimension, the checkpoint's SHA-256). Only when all of it is on disk does one atomic
rename of `artifacts/current.json` switch readers to it, so the app keeps serving the old set
until the new one is whole, and a kill at any point leaves a set that agrees.

Readers go through `open_artifact_set`, which refuses (one line, saying to re-embed) a set
whose parts disagree: another generation, `ntotal` != rows != items, another checkpoint.
Run folders from before generations keep their files at the top level and still load when
they agree. Anything that writes a run's vectors (embed, add) goes through
`write_artifact_set`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.embed.embeddings import Embeddings
from core.files import atomic_write_json, file_sha256, fsync_dir, read_json
from core.index.vectors import VectorIndex
from core.run_folder import ARTIFACT_FILES, ARTIFACTS_DIR, CURRENT_FILE, RunError, RunPaths

_PREFIX = "g"
MANIFEST_FORMAT = 1


@dataclass(frozen=True, eq=False)
class ArtifactSet:
    """A run's served set, checked to agree.

    generation: e.g. 'g000007'; '' for a run folder from before generations.
    checkpoint: the checkpoint whose model made the vectors.
    """

    run_dir: Path
    generation: str
    embeddings: Embeddings
    index: VectorIndex
    checkpoint: Path
    checkpoint_sha256: str


def _reembed(run_dir: Path) -> str:
    return f"re-embed the run: python -m core embed --run {run_dir}"


def generations(run_dir: Path) -> list[str]:
    """Generation folders present under the run's artifacts/, oldest first."""
    folder = Path(run_dir) / ARTIFACTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith(_PREFIX) and p.name[1:].isdigit())


def _new_generation(run_dir: Path) -> tuple[str, Path]:
    """A fresh generation folder, numbered past every name of that form under artifacts/
    (a stray file or folder such as 'g000003' left by hand or a copy is stepped over)."""
    folder = run_dir / ARTIFACTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[1:]) for p in folder.iterdir()
             if p.name.startswith(_PREFIX) and p.name[1:].isdigit()]
    number = max(taken, default=0) + 1
    while True:
        gen = f"{_PREFIX}{number:06d}"
        try:
            (folder / gen).mkdir()
            return gen, folder / gen
        except FileExistsError:  # another name appeared meanwhile (by hand): the next one
            number += 1


def write_artifact_set(run_dir: str | Path, embeddings: Embeddings, index: VectorIndex,
                       checkpoint: Path) -> str:
    """Write a new generation beside the served one and switch to it in one rename.

    Args:
        run_dir: the run folder (its lock held by the caller).
        embeddings: the vectors and their items, row i = index id i.
        index: built over `embeddings.vectors`.
        checkpoint: the checkpoint whose model made the vectors (hard-linked into the set).

    Returns:
        The new generation's name.

    Raises:
        RunError: the parts given do not agree.
    """
    run_dir = Path(run_dir)
    if not (len(embeddings) == embeddings.vectors.shape[0] == index.ntotal):
        raise RunError(f"{run_dir}: {len(embeddings)} items, {embeddings.vectors.shape[0]} vectors "
                       f"and {index.ntotal} indexed; they must agree")
    before = RunPaths(run_dir).generation
    gen, folder = _new_generation(run_dir)
    paths = RunPaths(folder, generation=None)
    embeddings.save(folder)
    index.save(paths.index, generation=gen)
    model = folder / "model.pt"
    try:
        os.link(checkpoint, model)  # the checkpoint is replaced by rename: the link keeps this one
    except OSError:
        shutil.copyfile(checkpoint, model)
    atomic_write_json(folder / "manifest.json", {
        "format": MANIFEST_FORMAT, "generation": gen, "n": len(embeddings),
        "dim": int(embeddings.vectors.shape[1]), "checkpoint": checkpoint.name,
        "checkpoint_sha256": file_sha256(model), "index_kind": index.kind})
    fsync_dir(folder)
    atomic_write_json(run_dir / ARTIFACTS_DIR / CURRENT_FILE, {"generation": gen})
    prune(run_dir, keep={gen, before})
    return gen


def prune(run_dir: Path, keep: set[str]) -> None:
    """Remove generations other than `keep` (the served one and the one served before it,
    which a reader may still hold), unfinished ones included, and the top-level files of
    the old layout."""
    for gen in generations(run_dir):
        if gen not in keep:
            shutil.rmtree(run_dir / ARTIFACTS_DIR / gen, ignore_errors=True)
    legacy = RunPaths(run_dir, generation=None)
    for p in [getattr(legacy, name) for name in ARTIFACT_FILES] + [Path(f"{legacy.index}.json")]:
        p.unlink(missing_ok=True)


def open_artifact_set(run_dir: str | Path, verify_checkpoint: bool = True) -> ArtifactSet:
    """The run's served set, checked: one generation, ntotal = rows = items, its checkpoint.

    Raises:
        RunError: nothing embedded yet, or parts that disagree or cannot be read (one line
            that says to re-embed).
    """
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    if not paths.index.is_file() or not paths.embeddings.is_file():
        if paths.generation:  # current.json names a set whose files are not all there
            raise RunError(f"{run_dir}: artifact set {paths.generation} is incomplete; "
                           + _reembed(run_dir))
        raise RunError(f"{run_dir} has no index yet (training not finished?)")
    embeddings = Embeddings.load(run_dir, paths=paths)
    try:
        index = VectorIndex.load(paths.index)
    except (OSError, ValueError) as e:
        raise RunError(f"{str(e).splitlines()[0]}; {_reembed(run_dir)}") from None
    if not (index.ntotal == len(embeddings) == embeddings.vectors.shape[0]):
        raise RunError(f"{run_dir}: the index holds {index.ntotal} vectors but embeddings.npy "
                       f"{embeddings.vectors.shape[0]} rows and items.csv {len(embeddings)}; "
                       + _reembed(run_dir))
    if index.dim != embeddings.vectors.shape[1]:
        raise RunError(f"{run_dir}: the index is {index.dim}-d but the embeddings "
                       f"{embeddings.vectors.shape[1]}-d; " + _reembed(run_dir))
    if not paths.generation:  # the old layout: the best checkpoint made the vectors
        checkpoint = paths.best if paths.best.is_file() else paths.last
        return ArtifactSet(run_dir, "", embeddings, index, checkpoint, "")
    manifest = read_json(paths.manifest, default=None) or {}
    if manifest.get("generation") != paths.generation or index.generation != paths.generation \
            or manifest.get("n") != index.ntotal:
        raise RunError(f"{run_dir}: artifact set {paths.generation} is incomplete or mixed; "
                       + _reembed(run_dir))
    if not paths.model.is_file():
        raise RunError(f"{run_dir}: the checkpoint of artifact set {paths.generation} is missing; "
                       + _reembed(run_dir))
    sha = str(manifest.get("checkpoint_sha256", ""))
    if verify_checkpoint and file_sha256(paths.model) != sha:
        raise RunError(f"{run_dir}: the checkpoint of artifact set {paths.generation} was changed; "
                       + _reembed(run_dir))
    return ArtifactSet(run_dir, paths.generation, embeddings, index, paths.model, sha)
