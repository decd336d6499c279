"""Train > "Measure here" (issue 33, defect 1): clicking it times the recipe and keeps the form."""

from __future__ import annotations

from core.config import PRESETS
from core.train import saved_warmup
from tests.page_helpers import copy_workspace, open_page


def test_measure_here_times_the_recipe_and_keeps_the_form(tiny_workspace, tmp_path, monkeypatch) -> None:
    copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    at = open_page("pages/train.py")
    at.button_group(key="train_preset").set_value("quick").run()
    at.button(key="train_warmup").click().run()
    assert not at.exception, at.exception
    size = PRESETS["quick"].train.image_size
    warm = saved_warmup(tmp_path / "ws" / "runs", "resnet18", size, "cpu")
    assert warm is not None and warm.images_per_s > 0
    plan = next(m.value for m in at.markdown if "Will train on" in m.value)
    assert "a warm-up of this recipe on this machine" in plan
    assert at.text_input(key="train_run_name").value.startswith("quick-")
    assert any(b.label == "Start training" for b in at.button)
