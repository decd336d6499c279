"""The app in a real browser: every page loads in headless Chromium, and a search works.

AppTest does not run the front end; this does, once. Screenshots go to a temp folder
(or $CXR_SCREENSHOTS) so a person can look at them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Chromium is not installed (apt-get install chromium); .ci/run installs it"),
]

PAGES = [  # (url path, the page's title, text of one real element)
    # A page URL first, on a fresh server: it must still go through streamlit_app.py's router.
    ("map", "Embedding map", "Retrieval quality by class"),
    ("", "Home", "Dataset"),
    ("train", "Train", "Start training"),
    ("search", "Search", "Upload"),
    ("duplicates", "Duplicates", "threshold"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(_tiny_workspace_built):
    port = _free_port()
    env = {**os.environ, "CXR_WORKSPACE": str(_tiny_workspace_built.root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode()[-2000:])
    yield url, _tiny_workspace_built
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CXR_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait_idle(page) -> None:
    """Wait until Streamlit has rendered: no 'Running...' indicator and no loading skeletons."""
    page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
    deadline = time.time() + 90
    quiet = 0
    while time.time() < deadline and quiet < 3:
        busy = (page.locator("[data-testid='stStatusWidget']").count()
                + page.locator("[data-testid='stSkeleton']").count())
        quiet = 0 if busy else quiet + 1
        time.sleep(0.4)


@pytest.mark.parametrize("path, title, element", PAGES)
def test_every_page_loads(page, server, shots, path, title, element):
    url, _ = server
    page.goto(f"{url}/{path}")
    _wait_idle(page)
    page.wait_for_selector("h1", timeout=60_000)
    assert title.lower() in page.title().lower(), page.title()
    page.get_by_text(element, exact=False).first.wait_for(timeout=60_000)
    _wait_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "Duplicates" in nav and "shared" not in nav  # the router's pages, not the folder's files
    page.screenshot(path=str(shots / f"page-{path or 'home'}.png"), full_page=True)


def test_upload_on_search_shows_neighbours(page, server, shots):
    url, ws = server
    query = next(p for p in sorted(ws.dataset.rglob("*.png")))
    page.goto(f"{url}/search")
    _wait_idle(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(query))
    page.get_by_text("cosine", exact=False).first.wait_for(timeout=60_000)
    _wait_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert query.name in page.content()  # the query itself is among its own neighbours
    page.screenshot(path=str(shots / "search-results.png"), full_page=True)
