"""Home and Train pages through the entry point (AppTest): what a user reads and clicks."""

from __future__ import annotations

import functools
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import PRESETS
from core.jobs import training as jobs
from core.model.network import imagenet_weights_available
from core.runs.workspace import Workspace, ensure_demo_workspace

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def _app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _fake_job(run_dir: Path, args: list[str]) -> jobs.Job:
    return jobs.Job(run_dir, 4242, tuple(args), 0.0)


def test_home_shows_dataset_model_and_runs(tiny_workspace) -> None:
    at = _app()
    evaluation = json.loads((tiny_workspace.run_dir / "evaluation.json").read_text())
    report = json.loads((tiny_workspace.run_dir / "report.json").read_text())
    shown = _metrics(at)
    assert shown["Images"] == str(report["n_images"]) == "26"
    assert shown["Classes"] == "4"
    assert shown["Dataset (SYNTHETIC)"] == "demo-synthetic"
    assert shown["Run"] == "tiny"
    assert shown["P@5"] == f"{evaluation['precision_at_5']:.3f}"
    assert shown["mAP@R"] == f"{evaluation['map_at_r']:.3f}"
    assert shown["Index size"] == "26"
    counts = at.dataframe[0].value
    assert dict(zip(counts["class"], counts["images"], strict=True)) == report["class_counts"]
    assert any("SYNTHETIC" in i.value for i in at.info)
    splits = ", ".join(f"{k} {v}" for k, v in report["split_counts"].items())
    assert any(splits in c.value for c in at.caption)
    runs = at.dataframe[-1].value
    assert list(runs["run"]) == ["tiny"] and list(runs["epochs_done"]) == [2]
    baselines = at.dataframe[1].value
    assert baselines["model"][0] == "this run (tiny)" and "baseline: raw pixels (32 px)" in list(baselines["model"])
    assert at.sidebar.text_input[0].value == str(tiny_workspace.root)
    assert at.sidebar.selectbox[0].value == "tiny"


@pytest.mark.parametrize("run_p5, untrained_p5, says", [
    (0.400, 0.400, "Why: it scores no better than the same encoder with random weights (0.400)"),
    (0.450, 0.300, "lifted it above the same encoder with random weights (0.300)"),
    (0.600, 0.300, None),  # ahead of every baseline: no line
])
def test_home_says_why_the_model_is_below_a_baseline(run_p5, untrained_p5, says, tiny_workspace,
                                                     tmp_path, monkeypatch) -> None:
    """Issue 13: a model below raw pixels gets one line of why, from its own evaluation."""
    from core.files import atomic_write_json
    from core.retrieval.evaluate import Evaluation
    from core.retrieval.metrics import RetrievalScores
    from tests.page_helpers import copy_workspace

    def scores(p5: float) -> RetrievalScores:
        return RetrievalScores(0.5, p5, 0.5, 0.3, 0.1, 26, 264)

    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    atomic_write_json(run / "evaluation.json", Evaluation(
        scores(run_p5), "protocol", "data",
        {"pixels_32": scores(0.492), "random_init_resnet18": scores(untrained_p5)}).to_dict())
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    at = _app()
    report = json.loads((run / "report.json").read_text())
    lines = [w.value.replace("\\", "") for w in at.warning if "Below raw pixels" in w.value]
    if says is None:
        assert lines == []
        return
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith(f"Below raw pixels (32 px) on P@5 ({run_p5:.3f} vs 0.492, 26 test queries).")
    assert says in lines[0]
    assert f"{report['epochs_done']} epochs on {report['split_counts']['train']} training images" in lines[0]


def test_train_form_has_the_seed_recipe_and_quick_one_click_away(tiny_workspace) -> None:
    at = _app("pages/train.py")
    values = {n.label: n.value for n in at.number_input}
    assert values == {"Epochs": 50, "Batch size": 64, "Image size (px)": 224,
                      "Learning rate": 0.001, "Temperature": 0.5, "Weight decay": 0.0, "Seed": 0,
                      "Patient positives": 0.0}
    boxes = {s.label: s.value for s in at.selectbox}
    assert boxes["Encoder"] == "resnet18" and "Optimiser" not in boxes
    assert boxes["Initial weights"] == ("imagenet" if imagenet_weights_available() else "none")
    if not imagenet_weights_available():
        assert any("not in the local torch cache" in c.value for c in at.caption)
    plan = next(m.value for m in at.markdown if "Will train on" in m.value)
    assert "**cpu**" in plan or "**cuda**" in plan
    assert "Estimated time" in plan and "estimate" in plan and "26 images × 50 epochs" in plan

    at.button_group(key="train_preset").set_value("quick").run()
    quick = PRESETS["quick"].train
    values = {n.label: n.value for n in at.number_input}
    assert values["Epochs"] == quick.epochs and values["Image size (px)"] == quick.image_size
    assert values["Temperature"] == quick.temperature
    assert {s.label: s.value for s in at.selectbox}["Initial weights"] == "none"


def test_train_shows_the_finished_run_and_past_runs(tiny_workspace) -> None:
    at = _app("pages/train.py")
    shown = _metrics(at)
    assert shown["Epochs done"] == "2/2"
    best = json.loads((tiny_workspace.run_dir / "report.json").read_text())["best_val_loss"]
    assert shown["Best val loss"] == f"{best:.4f}"
    assert at.get("plotly_chart"), "loss curves"
    table = at.dataframe[0].value
    row = table[table["run"] == "tiny"].iloc[0]
    assert row["epochs_done"] == 2 and row["preset"] == "tiny"
    saved = json.loads((tiny_workspace.run_dir / "evaluation.json").read_text())
    assert row["map_at_r"] == pytest.approx(saved["map_at_r"])
    assert "pixels_32_p@5" in table.columns
    assert sorted(d.proto.label for d in at.get("download_button")) == ["best.pt", "test_embeddings.npy"]
    assert not any(b.label == "Stop" for b in at.button)


def test_start_passes_the_form_to_a_job(tiny_workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[str, list[str]]] = []

    def fake_start(ws: Workspace, name: str, args: list[str]) -> jobs.Job:
        started.append((name, args))
        return _fake_job(ws.runs_dir / name, args)

    monkeypatch.setattr(jobs, "start_training", fake_start)
    at = _app("pages/train.py")
    at.number_input(key="train_seed_epochs").set_value(3)
    at.number_input(key="train_seed_patient_positives").set_value(0.5)
    at.text_input(key="train_run_name").set_value("mine")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and not at.error
    [(name, args)] = started
    assert name == "mine"
    assert args[args.index("--patient-positives") + 1] == "0.5"
    assert args == jobs.train_args(tiny_workspace.dataset, "seed", epochs=3, batch_size=64, image_size=224,
                                   lr=0.001, temperature=0.5, weight_decay=0.0, seed=0, patient_positives=0.5,
                                   arch="resnet18",
                                   weights="imagenet" if imagenet_weights_available() else "none",
                                   device="auto")


def test_second_training_is_refused_with_a_message(tiny_workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "running_job", lambda ws: _fake_job(tiny_workspace.run_dir, []))
    monkeypatch.setattr(jobs, "is_running", lambda run_dir: False)
    at = _app("pages/train.py")
    assert any("'tiny' is training in this workspace" in w.value for w in at.warning)
    start = next(b for b in at.button if b.label == "Start training")
    assert start.disabled


def test_empty_workspace_prepares_the_demo_once_on_a_click(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "fresh"
    monkeypatch.setenv("CXR_WORKSPACE", str(root))
    # a smaller demo set than the real first start (speed); the job start itself is stubbed
    monkeypatch.setattr(jobs, "ensure_demo_workspace", functools.partial(ensure_demo_workspace, per_class=6))
    started: list[tuple[str, list[str]]] = []

    def fake_start(ws: Workspace, name: str, args: list[str]) -> jobs.Job:
        started.append((name, args))
        (ws.runs_dir / name).mkdir(parents=True)  # what the real start leaves behind
        return _fake_job(ws.runs_dir / name, args)

    monkeypatch.setattr(jobs, "start_training", fake_start)
    at = _app()
    assert started == [] and not root.exists()  # opening the page writes nothing
    at.button(key="home_demo").click().run()
    assert [name for name, _ in started] == ["demo"]
    args = started[0][1]
    assert args[args.index("--preset") + 1] == "demo"
    assert Workspace(root).settings()["synthetic"] is True
    assert _metrics(at)["Dataset (SYNTHETIC)"] == "demo-synthetic"
    at.run()  # a refresh, or another browser: not started twice
    assert len(started) == 1


def test_no_model_note_says_what_will_happen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages once said the demo model 'trains by itself' when nothing would start it."""
    from pages import _shared

    own = Workspace(tmp_path / "own")
    own.update(dataset=str(tmp_path))
    assert _shared.no_model_note(own) == "No trained model yet: train one on the Train page."
    demo = Workspace(ensure_demo_workspace(tmp_path / "demo", per_class=2).root)
    assert "the demo model is one click away on Home" in _shared.no_model_note(demo)
    (demo.runs_dir / jobs.DEMO_RUN).mkdir(parents=True)  # started once (stopped since): no button
    assert "one click away" not in _shared.no_model_note(demo)
    monkeypatch.setattr(_shared, "running_job", lambda ws: _fake_job(ws.runs_dir / "demo", []))
    assert _shared.no_model_note(demo).startswith("No trained model yet: 'demo' is training")


def test_open_folder_refuses_outside_and_explains_bad_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ws"
    (root / "empty").mkdir(parents=True)
    Workspace(root).update(dataset=str(tmp_path / "gone"))  # a dataset that disappeared: no demo
    monkeypatch.setenv("CXR_WORKSPACE", str(root))
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", "")
    at = _app()
    assert any("dataset folder not found" in e.value for e in at.error)
    folder = next(t for t in at.text_input if t.label == "Folder on this server")
    folder.set_value("/etc")
    next(b for b in at.button if b.label == "Open folder").click().run()
    assert any("outside the folders this app may open" in e.value for e in at.error)
    folder = next(t for t in at.text_input if t.label == "Folder on this server")
    folder.set_value(str(root / "empty"))
    next(b for b in at.button if b.label == "Open folder").click().run()
    assert any("no images found" in e.value for e in at.error)


def test_upload_a_zip_of_class_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ws"
    Workspace(root).update(dataset=str(tmp_path / "gone"))
    monkeypatch.setenv("CXR_WORKSPACE", str(root))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for label in ("Normal", "Pneumonia"):
            for i in range(3):
                png = io.BytesIO()
                Image.new("L", (16, 16), 60 * i).save(png, format="PNG")
                z.writestr(f"chest/{label}/{i}.png", png.getvalue())
    at = _app()
    at.file_uploader[0].set_value(("my chest.zip", buf.getvalue(), "application/zip")).run()
    next(b for b in at.button if b.label.startswith("Unpack")).click().run()
    assert not at.exception and not at.error
    assert Workspace(root).dataset_path == root / "datasets" / "my-chest" / "chest"
    assert _metrics(at)["Images"] == "6" and _metrics(at)["Classes"] == "2"
    assert any("Now using chest" in s.value for s in at.success)

    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../evil.png", b"x")
    at.file_uploader[0].set_value(("evil.zip", bad.getvalue(), "application/zip")).run()
    next(b for b in at.button if b.label.startswith("Unpack")).click().run()
    assert any("leaves the folder" in e.value for e in at.error)
    assert not (root / "datasets" / "evil").exists() and not (root / "evil.png").exists()


def test_workspace_from_the_url_outside_allowed_roots_is_refused(tiny_workspace, monkeypatch) -> None:
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", "")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["workspace"] = "/etc"
    at.run()
    assert not at.exception
    assert any("outside the folders" in e.value for e in at.sidebar.error)
    assert at.sidebar.text_input[0].value == str(tiny_workspace.root)


def test_stop_then_kill_buttons_signal_the_job(tiny_workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(jobs, "running_job", lambda ws: _fake_job(tiny_workspace.run_dir, []))
    monkeypatch.setattr(jobs, "is_running", lambda run_dir: True)
    monkeypatch.setattr(jobs, "stop", lambda run_dir: calls.append(f"stop {run_dir.name}") or True)
    monkeypatch.setattr(jobs, "kill", lambda run_dir: calls.append(f"kill {run_dir.name}") or True)
    at = _app("pages/train.py")
    at.button(key="stop").click().run()
    assert calls == ["stop tiny"]
    assert any("Stopping after the current step" in c.value for c in at.caption)
    at.button(key="kill").click().run()
    assert calls == ["stop tiny", "kill tiny"]


def test_run_name_follows_the_preset_until_edited(tiny_workspace) -> None:
    at = _app("pages/train.py")
    assert at.text_input(key="train_run_name").value.startswith("seed-")
    at.button_group(key="train_preset").set_value("quick").run()
    assert at.text_input(key="train_run_name").value.startswith("quick-")
    at.text_input(key="train_run_name").set_value("mine").run()
    at.button_group(key="train_preset").set_value("seed").run()
    assert at.text_input(key="train_run_name").value == "mine"


@pytest.mark.parametrize("state", ["running", "embedding", "indexing", "evaluating"])
def test_a_run_whose_process_died_in_any_state_offers_resume(state, tiny_workspace, tmp_path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 case 4: killed while evaluating (or embedding, ...) reads 'interrupted'."""
    from core.files import atomic_write_json
    from core.run_folder import RunPaths, read_status
    from tests.page_helpers import copy_workspace

    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    paths = RunPaths(run)
    paths.lock.touch()  # nobody holds it: the process is gone
    atomic_write_json(paths.status, {"state": state, "pid": 999_999_999, "epoch": 2, "epochs": 2})
    atomic_write_json(run / jobs.JOB_FILE, {"args": ["--preset", "tiny"], "pid": 999_999_999,
                                            "started": 0.0, "command": []})
    assert read_status(run)["state"] == "interrupted"
    resumed: list[str] = []
    monkeypatch.setattr(jobs, "resume", lambda run_dir, ws=None: resumed.append(run_dir.name))
    at = _app("pages/train.py")
    assert any("interrupted" in p.proto.text for p in at.get("progress"))
    at.button(key="resume").click().run()
    assert resumed == [run.name]


def test_a_url_never_creates_a_workspace_or_starts_a_training(tmp_path: Path, monkeypatch) -> None:
    """Issue 10 case 5: `/?workspace=<new folder>` selects nothing and writes nothing."""
    home = tmp_path / "home"
    default = home / "ws"
    monkeypatch.setenv("CXR_WORKSPACE", str(default))
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", str(home))
    started: list[str] = []
    monkeypatch.setattr(jobs, "start_training", lambda ws, name, args: started.append(name))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["workspace"] = str(home / "new")
    at.run()
    assert not at.exception
    assert any("No workspace at" in w.value for w in at.sidebar.warning)
    at.run()  # a refresh
    assert started == [] and not (home / "new").exists() and not default.exists()
