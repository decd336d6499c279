"""A damaged items.csv or NaN vectors in a run's served set: one line naming what to redo."""

from __future__ import annotations

import numpy as np
import pytest

from core.embed.embeddings import Embeddings
from core.run_folder import RunError, RunPaths


def _saved(folder, vectors=None) -> Embeddings:
    vecs = np.eye(3, 4, dtype=np.float32) if vectors is None else vectors
    emb = Embeddings(["A/a.png", "A/b.png", "B/c.png"], ["A", "A", "B"], ["train", "val", "test"],
                     ["", "", ""], vecs)
    emb.save(folder)
    return emb


@pytest.mark.parametrize("column", [0, 1, 3])
def test_a_nul_byte_in_items_csv_is_named(tmp_path, column):
    _saved(tmp_path)
    items = RunPaths(tmp_path, generation=None).items
    rows = items.read_text(encoding="utf-8").splitlines(True)
    cells = rows[2].rstrip("\n").split(",")
    cells[column] = cells[column][:1] + "\0" + cells[column][1:]
    rows[2] = ",".join(cells) + "\n"
    items.write_text("".join(rows), encoding="utf-8")
    with pytest.raises(RunError) as e:
        Embeddings.load(tmp_path)
    message = str(e.value)
    assert str(items) in message and "NUL" in message and "row 2" in message, message
    assert "embed --run" in message and "\n" not in message


def test_a_clean_items_csv_still_loads(tmp_path):
    emb = _saved(tmp_path)
    back = Embeddings.load(tmp_path)
    assert back.paths == emb.paths and np.array_equal(back.vectors, emb.vectors)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_vectors_are_named(tmp_path, bad):
    vectors = np.eye(3, 4, dtype=np.float32)
    vectors[1, 2] = bad
    _saved(tmp_path, vectors)
    with pytest.raises(RunError) as e:
        Embeddings.load(tmp_path)
    message = str(e.value)
    assert str(RunPaths(tmp_path, generation=None).embeddings) in message, message
    assert "NaN" in message and "row 1" in message and "embed --run" in message
