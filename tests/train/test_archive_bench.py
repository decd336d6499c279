"""The archive benchmark's small path: two tiny runs on 150 films of each collection, scored.

Skipped where ../shared/data/cxr or ../shared/data/cxr-kermany is absent (users do not have them).
"""

from __future__ import annotations

import json

import pytest

from benchmarks import archive

pytestmark = pytest.mark.skipif(not ((archive.DEV / "manifest.csv").is_file()
                                     and (archive.ARCHIVE / "manifest.csv").is_file()),
                                reason="../shared/data/cxr and cxr-kermany are not here")


def test_tiny_archive_table(tmp_path, capsys):
    out = tmp_path / "archive.jsonl"
    code = archive.main(["--preset", "tiny", "--epochs", "1", "--limit", "150", "--seeds", "0",
                         "--rerank-queries", "20",
                         "--work", str(tmp_path / "work"), "--out", str(out)])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    runs = [r for r in rows if r["name"] == "archive.run"]
    assert [r["trained_on"] for r in runs] == ["dev", "dev+archive"]
    dev, both = runs
    assert both["n_train"] > dev["n_train"] > 0  # the archive's films were trained on
    for r in runs:
        assert 0 <= r["dev_test_p5"] <= 1 and r["dev_test_queries"] > 0
        assert r["held_queries"] > 0 and 0 <= r["held_p1"] <= 1 and 0 <= r["held_reranked_p1"] <= 1
        assert r["rerank_depth"] >= 1 and r["rerank_s_per_query"] > 0
    # no held-out patient was trained on
    def patients(folder: str) -> set[str]:
        lines = (tmp_path / "work" / folder / "manifest.csv").read_text().splitlines()[1:]
        return {line.split(",")[-1] for line in lines}

    held, trained = patients("held-out"), patients("dev+archive")
    assert held and not (held & trained)
    table = capsys.readouterr().out
    assert "| dev+archive | 0 |" in table
