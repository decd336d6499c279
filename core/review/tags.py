"""Tags on films and saved views of the film grid: append-only SQLite beside the verdicts.

A tag is put on or taken off a film by appending a row (film path, tag, reviewer, time, 'add'
or 'remove'); a film carries a tag when the latest row for (film, tag) is an 'add'. Tagging
many films is one transaction (one batch): all of them or none. A saved view is a named set
of grid filters, stored the same way (the latest row per name; a 'remove' row deletes it), so
two people saving views at once both keep theirs.

Both live in the workspace's review database (`Workspace.reviews_db`), with the verdict
store's rules (core/review/store.py): WAL journal, a busy timeout so two writers queue, every
write in one `BEGIN IMMEDIATE` transaction with synchronous=FULL; a read-only or damaged
database answers in one line naming the file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.review.database import connect, transaction
from core.review.store import ReviewError, _clean_reviewer

ACTIONS = ("add", "remove")
MAX_TAG = 40  # characters: a tag is a short word or two shown on chips and in a filter
MAX_VIEW_NAME = 60
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    path TEXT NOT NULL,
    tag TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    created REAL NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    batch TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_film ON tags(dataset, path, tag, id);
CREATE TABLE IF NOT EXISTS saved_views (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    name TEXT NOT NULL,
    filters TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    created REAL NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('add', 'remove'))
);
CREATE INDEX IF NOT EXISTS saved_views_name ON saved_views(dataset, name, id);
"""
_TAG_COLUMNS = ("id", "dataset", "path", "tag", "reviewer", "created", "action", "batch")
# The latest row of each (film, tag): the film carries the tag when it is an 'add'.
_LATEST = """SELECT t.* FROM tags t WHERE t.dataset = ? AND t.id = (SELECT MAX(u.id) FROM tags u
    WHERE u.dataset = t.dataset AND u.path = t.path AND u.tag = t.tag)"""


class TagError(ReviewError):
    """A tag or view cannot be stored (bad name, or an unreadable database): one line."""


@dataclass(frozen=True)
class TagEvent:
    """One row of the tag history."""

    id: int
    dataset: str
    path: str  # the film, relative to the dataset root
    tag: str
    reviewer: str
    created: float  # seconds since the epoch
    action: str  # add | remove
    batch: str  # rows written by one action share it


@dataclass(frozen=True)
class SavedView:
    """A named set of grid filters (`filters`: plain JSON data, e.g. {"label": ["x"]})."""

    name: str
    filters: dict
    reviewer: str
    created: float


def check_tag(tag: str) -> str:
    """The tag as stored (outer spaces trimmed), or TagError: non-empty, at most MAX_TAG
    characters, no control characters (tabs, new lines, ...)."""
    return _check_name(tag, "tag", MAX_TAG)


def _check_name(text: str, what: str, limit: int) -> str:
    name = str(text or "").strip()
    if not name:
        raise TagError(f"enter a {what} name")
    if len(name) > limit:
        raise TagError(f"{what} {name[:limit]!r}… is longer than {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        raise TagError(f"{what} {name!r} holds a control character (a tab or a new line?)")
    return name


class TagStore:
    """Tags and saved views for one dataset in the review database.

    Args:
        path: the database file (created with its folder on first write).
        dataset: which dataset the films' relative paths belong to (its root folder, as the
            verdict store's `dataset`).
    """

    def __init__(self, path: str | Path, dataset: str = "") -> None:
        self.path = Path(path)
        self.dataset = str(dataset)

    # ---- the database ---------------------------------------------------------------------

    def _connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return connect(self.path, TagError, "tags")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: concurrent writers wait for each other, none is lost."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TagError(f"cannot create the folder of {self.path}: {e.strerror}") from None
        with self._connect() as db, transaction(db, _create_schema):
            yield db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading, None when no tag was ever stored (no file, no table)."""
        if not self.path.is_file():
            yield None
            return
        with self._connect() as db:
            yield db if _has(db, "saved_views") else None

    # ---- tags -----------------------------------------------------------------------------

    def add(self, paths: Iterable[str], tag: str, *, reviewer: str) -> list[TagEvent]:
        """Put `tag` on every film of `paths` not carrying it yet, in one transaction.

        Returns:
            The rows written (none for films that already carry it).
        """
        return self._change(paths, tag, reviewer, "add")

    def remove(self, paths: Iterable[str], tag: str, *, reviewer: str) -> list[TagEvent]:
        """Take `tag` off every film of `paths` carrying it, in one transaction."""
        return self._change(paths, tag, reviewer, "remove")

    def _change(self, paths: Iterable[str], tag: str, reviewer: str, action: str) -> list[TagEvent]:
        tag, reviewer = check_tag(tag), _reviewer(reviewer)
        films = list(dict.fromkeys(str(p) for p in paths))
        batch, now, out = uuid.uuid4().hex, time.time(), []
        with self._write() as db:
            carrying = {r[0] for r in db.execute(
                f"SELECT path FROM ({_LATEST}) WHERE tag = ? AND action = 'add'", (self.dataset, tag))}
            for path in films:
                if (path in carrying) == (action == "add"):
                    continue  # nothing to change: the history records actions, not no-ops
                values = (self.dataset, path, tag, reviewer, now, action, batch)
                cur = db.execute(f"INSERT INTO tags ({', '.join(_TAG_COLUMNS[1:])}) VALUES "
                                 f"({', '.join('?' * len(values))})", values)
                out.append(TagEvent(int(cur.lastrowid or 0), *values))
        return out

    def current(self) -> dict[str, list[str]]:
        """The tags each tagged film carries now, {path: tags in name order}."""
        with self._read() as db:
            if db is None:
                return {}
            rows = db.execute(f"SELECT path, tag FROM ({_LATEST}) WHERE action = 'add' "
                              "ORDER BY path, tag", (self.dataset,)).fetchall()
        out: dict[str, list[str]] = {}
        for path, tag in rows:
            out.setdefault(path, []).append(tag)
        return out

    def counts(self) -> dict[str, int]:
        """Each tag in use and how many films carry it, most used first."""
        with self._read() as db:
            if db is None:
                return {}
            rows = db.execute(f"SELECT tag, COUNT(*) FROM ({_LATEST}) WHERE action = 'add' "
                              "GROUP BY tag ORDER BY COUNT(*) DESC, tag", (self.dataset,)).fetchall()
        return {str(t): int(n) for t, n in rows}

    def films_with(self, tag: str) -> set[str]:
        """The films carrying `tag` now."""
        return {p for p, tags in self.current().items() if tag in tags}

    def history(self, path: str | None = None) -> list[TagEvent]:
        """Every tag row of the dataset (or of one film), oldest first."""
        query, args = f"SELECT {', '.join(_TAG_COLUMNS)} FROM tags WHERE dataset = ?", [self.dataset]
        if path is not None:
            query, args = query + " AND path = ?", [*args, str(path)]
        with self._read() as db:
            return [] if db is None else [TagEvent(*r) for r in db.execute(query + " ORDER BY id", args)]

    # ---- saved views ----------------------------------------------------------------------

    def save_view(self, name: str, filters: Mapping, *, reviewer: str) -> SavedView:
        """Save (or replace) the view `name`; `filters` must be JSON data."""
        name, reviewer = _check_name(name, "view", MAX_VIEW_NAME), _reviewer(reviewer)
        try:
            text = json.dumps(dict(filters), sort_keys=True)
        except (TypeError, ValueError) as e:
            raise TagError(f"view {name!r}: its filters are not plain data ({e})") from None
        now = time.time()
        with self._write() as db:
            db.execute("INSERT INTO saved_views (dataset, name, filters, reviewer, created, action) "
                       "VALUES (?, ?, ?, ?, ?, 'add')", (self.dataset, name, text, reviewer, now))
        return SavedView(name, json.loads(text), reviewer, now)

    def delete_view(self, name: str, *, reviewer: str) -> None:
        """Delete the view `name` (a 'remove' row; its earlier versions stay in the history)."""
        name, reviewer = _check_name(name, "view", MAX_VIEW_NAME), _reviewer(reviewer)
        with self._write() as db:
            db.execute("INSERT INTO saved_views (dataset, name, filters, reviewer, created, action) "
                       "VALUES (?, ?, '{}', ?, ?, 'remove')", (self.dataset, name, reviewer, time.time()))

    def views(self) -> dict[str, SavedView]:
        """The saved views now, by name in name order."""
        with self._read() as db:
            if db is None:
                return {}
            rows = db.execute(
                "SELECT name, filters, reviewer, created, action FROM saved_views v WHERE dataset = ? "
                "AND id = (SELECT MAX(id) FROM saved_views w WHERE w.dataset = v.dataset "
                "AND w.name = v.name) ORDER BY name", (self.dataset,)).fetchall()
        out = {}
        for name, text, reviewer, created, action in rows:
            if action == "add":
                try:
                    filters = json.loads(text)
                except ValueError:
                    continue  # written by hand: the view is left out rather than the page stopped
                out[name] = SavedView(name, filters if isinstance(filters, dict) else {}, reviewer, created)
        return out


def _create_schema(db: sqlite3.Connection) -> None:
    if not _has(db, "saved_views"):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)


def _has(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                      (table,)).fetchone() is not None


def _reviewer(reviewer: str) -> str:
    try:
        return _clean_reviewer(reviewer)
    except ReviewError as e:
        raise TagError(str(e).replace("giving a verdict", "tagging")) from None
