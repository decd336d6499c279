"""The app's entry point: page settings and navigation (`streamlit run streamlit_app.py`).

It imports nothing but Streamlit, so the first screen appears before any page has loaded its
libraries (torch, FAISS); a spinner covers that first load. The tab icon is a local file.
"""

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
    ("pages/search.py", "Search"),
    ("pages/duplicates.py", "Duplicates"),
]
pages = [st.Page(path, title=title, default=i == 0)
         for i, (path, title) in enumerate(PAGES) if (HERE / path).is_file()]
st.session_state["_routed_by_entry_point"] = True  # see pages/_routing.py
page = st.navigation(pages)
with st.spinner("Loading…", show_time=False):
    page.run()
