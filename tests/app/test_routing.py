"""pages/_routing.py leans on one private Streamlit detail; this fails when an upgrade changes it.

Streamlit decides, per server process, whether a `pages/` folder puts the app in its legacy
mode by the class flag `PagesManager.uses_pages_directory`; the script runner reads it, and
st.navigation sets it to False. The router reset relies on exactly that (the browser test's
first visit straight to /map checks the behaviour end to end).
"""

from __future__ import annotations

import inspect

from streamlit.commands import navigation
from streamlit.runtime import pages_manager
from streamlit.runtime.scriptrunner import script_runner


def test_streamlit_still_switches_the_legacy_pages_mode_by_the_flag_we_reset():
    assert "uses_pages_directory" in vars(pages_manager.PagesManager)
    assert "PagesManager.uses_pages_directory" in inspect.getsource(script_runner)  # read per run
    assert "_mpa_v1" in inspect.getsource(script_runner)  # the legacy mode the reset leaves
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation)
