"""The engine end to end through the CLI: demo-data -> train -> evaluate -> search; resume; errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.files import read_jsonl
from core.run_folder import RunPaths, read_status

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed: {proc.stderr[-2000:]}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("engine")
    data, run = base / "data", base / "run"
    cli("demo-data", str(data), "--per-class", "8", "--size", "64", "--seed", "1")
    cli("train", "--data", str(data), "--run", str(run), "--preset", "tiny", "--epochs", "2")
    return data, run


def test_help_lists_the_commands():
    out = cli("--help").stdout
    for command in ("demo-data", "train", "embed", "evaluate", "search"):
        assert command in out


def test_train_writes_the_run(trained):
    _, run = trained
    for name in ("config.json", "status.json", "metrics.jsonl", "best.pt", "last.pt", "splits.csv",
                 "report.json", "evaluation.json"):
        assert (run / name).is_file(), name
    served = RunPaths(run)  # the served set: one generation under artifacts/
    for path in (served.embeddings, served.labels, served.items, served.test_embeddings,
                 served.test_labels, served.index, served.model, served.manifest):
        assert path.is_file() and path.parent.parent == run / "artifacts", path
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) >= {"epoch", "train_loss", "val_loss", "lr", "seconds", "images_per_s"}
    assert read_status(run)["state"] == "finished"


def test_evaluate_json_has_the_contract_keys(trained):
    _, run = trained
    result = json.loads(cli("evaluate", "--run", str(run), "--json").stdout)
    for key in ("precision_at_1", "precision_at_5", "precision_at_10", "map", "map_at_r",
                "per_class", "n_queries", "n_gallery", "protocol", "baselines"):
        assert key in result
    assert result["n_queries"] > 0 and result["n_gallery"] > result["n_queries"]
    assert {"pixels_32", "random_init_resnet18"} <= set(result["baselines"])
    for scores in result["baselines"].values():
        assert 0 <= scores["map"] <= 1


def test_evaluate_on_another_folder(trained, tmp_path):
    _, run = trained
    other = tmp_path / "other"
    cli("demo-data", str(other), "--per-class", "3", "--size", "64", "--seed", "5")
    result = json.loads(cli("evaluate", "--run", str(run), "--data", str(other), "--json").stdout)
    n = sum(1 for _ in other.rglob("*.png")) + sum(1 for _ in other.rglob("*.jpg"))
    assert result["n_queries"] == n and result["n_gallery"] == n  # the query itself is excluded per query


def test_search_json_finds_the_image_itself_first(trained):
    data, run = trained
    items = RunPaths(run).items.read_text().splitlines()[1:]
    rel = items[0].split(",")[0]
    out = json.loads(cli("search", "--run", str(run), "--image", str(data / rel), "-k", "3", "--json").stdout)
    assert out["query"] == str(data / rel)
    assert [r["rank"] for r in out["results"]] == [1, 2, 3]
    assert out["results"][0]["path"] == rel
    assert out["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert set(out["results"][0]) == {"rank", "path", "label", "score"}


def test_resume_continues_from_last_epoch(trained, tmp_path):
    data, _ = trained
    run = tmp_path / "run"
    cli("train", "--data", str(data), "--run", str(run), "--preset", "tiny", "--epochs", "1")
    cli("train", "--data", str(data), "--run", str(run), "--preset", "tiny", "--epochs", "2")
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2]


@pytest.mark.parametrize("args, needle", [
    (["train", "--data", "/nonexistent/folder", "--run", "RUN"], "not found"),
    (["train", "--data", "EMPTY", "--run", "RUN"], "no images"),
    (["train", "--data", "DATA", "--run", "RUN", "--epochs", "0"], "positive"),
    (["train", "--data", "DATA", "--run", "RUN", "--batch-size", "-3"], "positive"),
    (["train", "--data", "DATA", "--run", "RUN", "--lr", "abc"], "number"),
    (["train", "--data", "DATA", "--run", "RUN", "--arch", "vgg"], "invalid choice"),
    (["train", "--data", "DATA", "--run", "RUN", "--weights", "/no/such.pt"], "not found"),
    (["evaluate", "--run", "/nonexistent/run", "--json"], "not a run folder"),
    (["search", "--run", "RUNDONE", "--image", "/no/such.png", "--json"], "not found"),
])
def test_user_errors_are_one_line(args, needle, trained, tmp_path):
    data, run = trained
    (tmp_path / "empty").mkdir()
    subs = {"DATA": str(data), "EMPTY": str(tmp_path / "empty"), "RUN": str(tmp_path / "r"),
            "RUNDONE": str(run)}
    proc = cli(*[subs.get(a, a) for a in args], check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr


def test_demo_workspace_train_starts_the_demo_model_once(tmp_path):
    """`make run` passes --train: the demo model trains without a click, once per workspace."""
    from core.jobs import training as jobs
    from core.runs.workspace import Workspace

    plain = Workspace(tmp_path / "plain")
    cli("demo-workspace", str(plain.root))
    assert plain.dataset_path is not None and not plain.runs_dir.exists()

    ws = Workspace(tmp_path / "ws")
    first = cli("demo-workspace", str(ws.root), "--train").stdout
    job = jobs.running_job(ws)
    try:
        assert job is not None and job.name == "demo", first
        assert f"run 'demo', process {job.pid}" in first
        again = cli("demo-workspace", str(ws.root), "--train").stdout  # a second `make run`
        assert f"run 'demo', process {job.pid}" in again
        assert [p.name for p in ws.runs_dir.iterdir()] == ["demo"]
    finally:
        if job is not None:
            jobs.kill(job.run_dir)
            assert jobs.wait(job, 30)
    assert "training" not in cli("demo-workspace", str(ws.root), "--train").stdout  # stopped: not restarted
