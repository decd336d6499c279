"""The app's entry point: page settings and navigation (`streamlit run streamlit_app.py`).

It imports nothing but Streamlit, so the first screen appears before any page has loaded its
libraries (torch, FAISS); a line says so while they load, once per server. The tab icon is a
local file.
"""

import sys
import time
from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent
# No page_title here: each st.Page title becomes the browser tab title.

ICON = HERE / "assets" / "icon.png"
st.set_page_config(page_icon=str(ICON), layout="wide")

# (file, title); the first is the home page. No page icons: a `:material/...:` one is fetched
# from a font server as the tab's icon, and emoji show as empty boxes without an emoji font.
PAGES = [
    ("pages/home.py", "Home"),
    ("pages/train.py", "Train"),
    ("pages/map.py", "Embedding map"),
    ("pages/films.py", "Films"),
    ("pages/search.py", "Search"),
    ("pages/duplicates.py", "Duplicates"),
    ("pages/quality.py", "Data quality"),
]
pages = [st.Page(path, title=title, default=i == 0)
         for i, (path, title) in enumerate(PAGES) if (HERE / path).is_file()]
st.session_state["_routed_by_entry_point"] = True  # see pages/_routing.py
# The page list is drawn here as links, not by st.navigation: .streamlit/config.toml hides
# Streamlit's own sidebar list (showSidebarNavigation = false), which on a fresh load listed
# every file of pages/ ("shared", "routing", ...) for a second or two before this script ran.
page = st.navigation(pages, position="hidden")
with st.sidebar:
    for p in pages:
        st.page_link(p)
if "torch" not in sys.modules:  # the first page this server shows imports torch and FAISS
    loading = st.empty()
    loading.caption("Loading the model libraries (once after the server starts)…")
    time.sleep(0.3)  # the server sends the links and this line now: the import holds Python for seconds
    import faiss  # noqa: F401
    import torch  # noqa: F401
    loading.empty()
# The page runs outside any spinner: a spinner around page.run() stayed on screen after the
# run had ended (Streamlit 1.67; seen on Search), so each page shows its own while it works.
page.run()
