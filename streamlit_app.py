"""The app's entry point: page settings and navigation (`streamlit run streamlit_app.py`)."""

from pathlib import Path

import streamlit as st

# No page_title here: each st.Page title becomes the browser tab title.
st.set_page_config(page_icon=":material/radiology:", layout="wide")

PAGES = [  # (file, title, icon); the first is the home page
    ("pages/home.py", "Home", ":material/home:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/map.py", "Embedding map", ":material/scatter_plot:"),
    ("pages/search.py", "Search", ":material/image_search:"),
    ("pages/duplicates.py", "Duplicates", ":material/content_copy:"),
]
HERE = Path(__file__).parent
pages = [st.Page(path, title=title, icon=icon, default=i == 0)
         for i, (path, title, icon) in enumerate(PAGES) if (HERE / path).is_file()]
st.session_state["_routed_by_entry_point"] = True  # see pages/_shared.route_through_entry_point
st.navigation(pages).run()
