"""Send a first visit to a page's URL through streamlit_app.py's router (one place, on purpose).

Streamlit still supports the legacy `pages/` folder: until some session of this server process
has called st.navigation, a folder named `pages/` beside the entry point puts the app in the
old mode, where a first visit straight to /map runs pages/map.py alone (no router, every file
of pages/ in the sidebar). Streamlit's documentation says only that "as soon as any session
executes st.navigation, the app ignores the pages/ directory"; there is no option to turn the
old mode off, and the supported alternative is a page folder under another name (a rename of
every page, left for a quieter moment). So this resets the class flag Streamlit reads
(`PagesManager.uses_pages_directory`, not public API) and reruns: the rerun goes through the
router with the same URL. tests/test_routing.py fails when a Streamlit upgrade changes this.
"""

from __future__ import annotations

import streamlit as st

ROUTED = "_routed_by_entry_point"  # session state, set by streamlit_app.py on every run


def route_through_entry_point() -> None:
    """Rerun through st.navigation when this page did not come through streamlit_app.py.

    Each page calls it first, before its imports: a first visit to /search on a fresh server
    otherwise spent 8 s importing torch and OpenCV for a run that is thrown away.

    The entry point marks the session on every run (AppTest resets Streamlit's flag before
    each run, so the flag alone would rerun every time and drop that run's button clicks).
    """
    from streamlit.runtime.pages_manager import PagesManager

    if not st.session_state.get(ROUTED):
        PagesManager.uses_pages_directory = False  # what st.navigation itself sets
        st.session_state[ROUTED] = True  # never loop, whatever Streamlit does next
        st.rerun()
