"""The app's Streamlit settings as Streamlit reads them (issue 33, defect 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_config(monkeypatch):
    """Streamlit's options parsed from the project's .streamlit/config.toml (then parsed again
    as before, so no other test sees them)."""
    from streamlit import config

    monkeypatch.chdir(ROOT)
    config.get_config_options(force_reparse=True)
    yield config
    monkeypatch.undo()
    config.get_config_options(force_reparse=True)


def test_error_boxes_offer_no_links_off_this_machine(app_config) -> None:
    """No "Ask Google" / "Ask ChatGPT" under an exception: what the server tells the browser."""
    from streamlit.proto.NewSession_pb2 import Config
    from streamlit.runtime.app_session import _get_show_error_links

    assert app_config.get_option("client.showErrorLinks") in (False, "false")
    assert _get_show_error_links() == Config.ShowErrorLinks.SHOW_ERROR_LINKS_FALSE
    assert app_config.get_option("client.toolbarMode") == "minimal"
    assert app_config.get_option("browser.gatherUsageStats") is False
    assert app_config.get_option("server.address") == "localhost"
