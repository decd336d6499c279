"""The nested DICOM tree of tests/archives.py, unlabelled, in a real browser (1280 x 720):
Home -> Map -> Search.

Its own module: it starts its own server and Chromium, and two Playwright sync sessions cannot
be open at once in one process (test_browser.py's module-scoped page would still be).
"""

from __future__ import annotations

import re

import pytest

from tests.app.test_browser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    READY_MS,
    VIEWPORT,
    WAIT_MS,
    _serve,
    _wait_idle,
    pytestmark,  # noqa: F401 (pytest reads it: the browser mark and the Chromium skip)
)


@pytest.fixture(scope="module")
def dicom_server(tmp_path_factory):
    """The app over a workspace whose dataset is the nested DICOM tree of tests/archives.py and
    whose active run is trained tiny on it (its t-SNE map computed): the server's address."""
    from core.config import Runtime, make_run_config
    from core.embed.projection import cached_projection
    from core.runs.pipeline import train_run
    from core.runs.workspace import Workspace
    from tests.archives import dicom_tree

    ws = Workspace(tmp_path_factory.mktemp("dicom_browser") / "ws")
    tree = dicom_tree(ws.datasets_dir / "hospital")
    run = ws.runs_dir / "hospital"
    train_run(make_run_config(str(tree.root), "tiny", epochs=1), run, runtime=Runtime(workers=0))
    cached_projection(run, "tsne", 30, 0, "all")
    ws.update(dataset=str(tree.root), active_run=str(run))
    yield from _serve(ws.root, tmp_path_factory.mktemp("dicom_server"))


def test_a_dicom_archive_walks_home_map_and_search(dicom_server, shots):
    """Issue 29: the nested DICOM tree, unlabelled, in the browser: Home shows its films,
    patients and skipped files (no class table), the Map draws with no label colouring, and
    Search answers a film of the tree picked as the query. No request leaves the app."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        page.on("request", lambda r: None if r.url.startswith((dicom_server, "data:", "blob:", "about:"))
                else outside.append(r.url))
        page.goto(dicom_server)
        _wait_idle(page)
        page.locator("[data-testid='stMetric']").filter(has_text="Patients").first.wait_for()
        metrics = page.locator("[data-testid='stMetric']").all_inner_texts()
        assert any(m.startswith("Films") for m in metrics) and not any(m.startswith("Classes") for m in metrics)
        assert any(m.startswith("Files skipped") for m in metrics)
        page.get_by_text(re.compile(r"^\d+ files skipped$")).first.wait_for()  # their list, with reasons
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(shots / "dicom-home.png"))

        page.goto(f"{dicom_server}/map")
        _wait_idle(page)
        page.locator(".js-plotly-plot").first.wait_for()
        page.get_by_text("No labels in this run", exact=False).first.wait_for()
        _wait_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(shots / "dicom-map.png"))

        page.goto(f"{dicom_server}/search")
        _wait_idle(page)
        page.get_by_text("Pick from the dataset", exact=True).click()
        page.get_by_text("shown: #1", exact=False).first.wait_for(timeout=READY_MS)
        _wait_idle(page)
        assert page.get_by_text(re.compile(r"^Top \d+ of \d+ images$")).count() == 1
        assert page.get_by_text(".dcm", exact=False).count() > 1  # the query and its results: tree films
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(shots / "dicom-search.png"), full_page=True)
        browser.close()
    assert not outside, f"requests left the app's address: {outside[:5]}"
