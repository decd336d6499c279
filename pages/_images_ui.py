"""Image grids shared by the Map and Search pages: cached thumbnails, names shown as plain text.

File names and labels come from users' folders, so they are shown with `st.text` (no
Markdown, no HTML) or, escaped (`escape_markdown`), in captions, which render Markdown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.data import THUMB_SIZE, ImageReadError, placeholder_png, thumbnail


@dataclass(frozen=True)
class GridItem:
    """One image of a grid: its dataset path, label, a first line (e.g. rank and cosine) and
    lines shown between the label and the file name (e.g. the patient)."""

    path: str
    label: str
    headline: str = ""
    details: tuple[str, ...] = ()


@st.cache_data(max_entries=4_000, show_spinner=False)  # ~3 KB each; the disk cache holds all
def cached_thumbnail(data_root: str, rel_path: str, cache_dir: str, size: int = THUMB_SIZE,
                     roots: tuple[Path, ...] = ()) -> bytes:
    """PNG thumbnail of a run's film (a grey square when it cannot be read, or lies outside
    the dataset folder and `roots`, the allowed roots: `core.data.dataset_file`)."""
    try:
        return thumbnail(data_root, rel_path, cache_dir, size, roots)
    except ImageReadError:
        return placeholder_png(size)


NAME_CHARS = 14  # a file name's characters that fit in one caption line under a 140 px thumbnail, with its tooltip


def short_name(name: str, limit: int = NAME_CHARS) -> str:
    """`name` cut in the middle to at most `limit` characters, keeping its start and its
    end ("person1182_virus_2017.jpeg" -> "perso…017.jpeg"), so a long file name
    takes one line under its thumbnail instead of breaking mid-word over three."""
    if len(name) <= limit:
        return name
    tail = max(limit // 2 + 1, 1)  # the end tells films apart: numbers, then the extension
    head = max(limit - tail - 1, 0)
    return name[:head] + "…" + name[-tail:]


def image_grid(items: Sequence[GridItem], data_root: Path, run_dir: Path, columns: int = 6,
               size: int = THUMB_SIZE, roots: tuple[Path, ...] = (),
               below: Callable[[int, GridItem], None] | None = None) -> None:
    """Thumbnails in rows of `columns`, each with its headline, label and file name (`roots`:
    the allowed roots a film added from outside the dataset may lie in). A long name is cut in
    the middle; the whole path is the text's tooltip. `below(i, item)`, when given, draws the
    i-th cell's own widgets (a checkbox, a button) under its name."""
    cache_dir = str(run_dir / "thumbnails")
    for start in range(0, len(items), columns):
        cells = st.columns(columns)
        for i, (cell, item) in enumerate(zip(cells, items[start:start + columns], strict=False), start):
            with cell:
                st.image(cached_thumbnail(str(data_root), item.path, cache_dir, size, roots), width="stretch")
                lines = [line for line in (item.headline, item.label, *item.details) if line]
                if lines:
                    st.text("\n".join(lines))
                name = Path(item.path).name  # smaller type than st.text
                st.caption(escape_markdown(short_name(name)), help=item.path if short_name(name) != name else None)
                if below is not None:
                    below(i, item)


_MARKDOWN_SPECIALS = set("\\`*_{}[]()<>#+-.!|:$~=^&\"'")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown punctuation, for user text inside st.error/st.warning bodies.

    CommonMark lets any ASCII punctuation be escaped, so the text shows as typed: no links,
    emphasis, LaTeX or Streamlit directives (':red[...]') can come from a file name.
    """
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in str(text))
