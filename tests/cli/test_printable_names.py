"""A file named "\\x1b[31mred.png" is printed escaped, never raw, wherever the CLI names it
(issue 28 item 10): its escape sequence would recolour the user's terminal, its newline split a
one-line error."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.cli.main import main
from core.cli.printable import printable

RED = "\x1b[31mred"
SHOWN = "\\x1b[31mred"


def test_printable_escapes_what_would_not_show_as_itself():
    assert printable("Normal/a é 1.png") == "Normal/a é 1.png"
    assert printable(Path(f"/x/{RED}.png")) == f"/x/{SHOWN}.png"
    assert printable("a\nb\rc\td\x7f\x9b") == "a\\nb\\rc\\td\\x7f\\x9b"
    assert printable("evil\u202egnp.exe") == "evil\\u202egnp.exe"  # a bidi override
    assert printable("bad-\udcff.png") == "bad-\\xff.png"  # os.fsdecode of the byte 0xff
    assert printable("line\u2028sep") == "line\\u2028sep"


def _no_raw_escape(text: str) -> None:
    assert "\x1b" not in text and SHOWN in text, text


def test_an_error_naming_the_file_is_escaped_and_one_line(tmp_path, capsys):
    missing = tmp_path / f"{RED}\u202erun"
    assert main(["evaluate", "--run", str(missing)]) == 2
    err = capsys.readouterr().err
    _no_raw_escape(err)
    assert err.endswith(f"{SHOWN}\\u202erun\n") and len(err.splitlines()) == 1


def test_a_bad_argument_value_is_escaped(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["search", "--run", "r", "--image", "q.png", "-k", RED])
    assert stop.value.code == 2
    _no_raw_escape(capsys.readouterr().err)


def test_search_prints_the_hits_names_escaped(tmp_path, capsys, monkeypatch):
    import core.retrieval.search as search

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    query = tmp_path / f"{RED}-query.png"
    query.write_bytes(b"")

    class Searcher:
        def __init__(self, *args, **kwargs):
            pass

        def search(self, image, k):
            return [SimpleNamespace(rank=1, score=0.9, label=f"{RED}-label", path=f"{RED}.png")]

    monkeypatch.setattr(search, "Searcher", Searcher)
    assert main(["search", "--run", str(run), "--image", str(query)]) == 0
    out = capsys.readouterr().out
    _no_raw_escape(out)
    assert f"{SHOWN}-label" in out and f"{SHOWN}.png" in out
    assert main(["search", "--run", str(run), "--image", str(query), "--json"]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and json.loads(shown)["results"][0]["path"] == f"{RED}.png"


def test_duplicates_prints_the_pairs_names_escaped(tmp_path, capsys, monkeypatch):
    import core.duplicates.search as dsearch

    run = tmp_path / "run"
    run.mkdir()
    from core.config import make_run_config

    (run / "config.json").write_text(json.dumps(make_run_config(str(tmp_path), "tiny").to_dict()))
    pair = SimpleNamespace(kind="exact", score=1.0, hash_distance=0, inliers=None,
                           cross_split=False, a=f"{RED}.png", b="Normal/b.png")
    result = SimpleNamespace(
        rule=SimpleNamespace(describe=lambda: "cosine >= 0.99"), method="fixed",
        estimated_precision=None, estimated_recall=None, flagged=[pair], groups=[],
        n_images=2, leakage=SimpleNamespace(n_patients_across_splits=0), out_dir=tmp_path / RED)
    monkeypatch.setattr(dsearch, "run_duplicates", lambda *a, **kw: result)
    assert main(["duplicates", "--run", str(run), "--threshold", "0.99"]) == 0
    out = capsys.readouterr().out
    _no_raw_escape(out)
    assert out.count(SHOWN) == 2


def test_demo_data_prints_its_folder_escaped(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / RED), "--per-class", "1", "--size", "32"]) == 0
    _no_raw_escape(capsys.readouterr().out)


def test_train_summary_escapes_the_run(tmp_path):
    from core.cli.main import train_summary

    report = SimpleNamespace(evaluation={"precision_at_5": 0.5, "map": 0.4, "map_at_r": 0.3},
                             epochs_done=1, train_seconds=2, n_skipped=0)
    _no_raw_escape(train_summary(report, f"runs/{RED}"))


def test_project_errors_name_the_run_escaped(tmp_path, capsys):
    assert main(["project", "--run", str(tmp_path / RED), "--method", "pca"]) == 2
    _no_raw_escape(capsys.readouterr().err)


def test_project_of_a_missing_run_creates_no_folder(tmp_path, capsys):
    assert main(["project", "--run", str(tmp_path / "missing"), "--method", "pca"]) == 2
    assert "no embeddings" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()  # its progress file made the folder
