"""Reviewers' verdicts on candidate pairs: an append-only SQLite history in the workspace.

Every verdict is a new row (pair, verdict, kind, note, reviewer, time, model run, threshold);
a changed mind is another row, and the current view is the latest live row per pair. Undo
appends an 'undo' row pointing at the rows it cancels, so the history keeps everything.

Concurrency and durability: WAL journal (readers never block the writer), a busy timeout so
two writers queue instead of failing, and every write in one `BEGIN IMMEDIATE` transaction
with synchronous=FULL. A killed writer leaves either its whole transaction or none of it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from core.duplicates.proof import KINDS as PAIR_KINDS
from core.errors import UserError
from core.review.database import connect, transaction

VERDICTS = ("duplicate", "not_duplicate", "skip")
# The kinds a duplicate search gives; a reviewer confirms or corrects one.
KINDS = PAIR_KINDS
KIND_LABELS = {
    "exact": "exact copy (same pixels)", "copy": "copy (same film, transformed)",
    "similar": "similar (not the same film)", "same_patient": "same patient, other film",
}
# Kinds of databases written before geometric verification: read (and accepted) as the new ones.
LEGACY_KINDS = {"same_image": "exact", "reencoded_resized": "copy", "cropped_rotated": "copy",
                "same_patient_other_study": "same_patient"}
_UNDO = "undo"
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    path_a TEXT NOT NULL,
    path_b TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('duplicate', 'not_duplicate', 'skip', 'undo')),
    kind TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    created REAL NOT NULL,
    run TEXT NOT NULL DEFAULT '',
    threshold REAL,
    batch TEXT NOT NULL,
    target INTEGER REFERENCES verdicts(id),
    CHECK (path_a < path_b)
);
CREATE INDEX IF NOT EXISTS verdicts_pair ON verdicts(dataset, path_a, path_b, id);
CREATE INDEX IF NOT EXISTS verdicts_reviewer ON verdicts(dataset, reviewer, id);
CREATE INDEX IF NOT EXISTS verdicts_target ON verdicts(target);
"""
# Rows that are not undo rows and that no undo row cancels.
_LIVE = """SELECT * FROM verdicts v WHERE v.dataset = ? AND v.verdict != 'undo'
    AND NOT EXISTS (SELECT 1 FROM verdicts u WHERE u.target = v.id)"""
_COLUMNS = ("id", "dataset", "path_a", "path_b", "verdict", "kind", "note", "reviewer",
            "created", "run", "threshold", "batch", "target")


class ReviewError(UserError):
    """A verdict cannot be stored (bad value, or an unreadable database): one line."""


class StaleVerdict(ReviewError):
    """The pair (or the action to undo) changed after the reviewer opened it: refresh.

    `changed`: the keys of the pairs that moved on (empty for an undo).
    """

    def __init__(self, message: str, changed: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.changed = list(changed)


STALE = "this pair changed since you opened it; the page now shows it as it is"
ANY = -1  # `seen` for callers that do not bind a verdict to what was shown (CLI, scripts)


@dataclass(frozen=True)
class Verdict:
    """One row of the history. path_a < path_b; `target` is set on undo rows only."""

    id: int
    dataset: str
    path_a: str
    path_b: str
    verdict: str  # duplicate | not_duplicate | skip | undo
    kind: str
    note: str
    reviewer: str
    created: float  # seconds since the epoch
    run: str
    threshold: float | None
    batch: str  # rows written by one action share it; undo cancels a whole batch
    target: int | None = None


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The pair's key: its two paths in sorted order, so (a, b) and (b, a) are one pair."""
    if a == b:
        raise ReviewError(f"a pair needs two different images, got {a!r} twice")
    return (a, b) if a < b else (b, a)


class ReviewStore:
    """Verdicts for one dataset in a SQLite file (several datasets may share the file).

    Args:
        path: the database file (created with its folder on first use).
        dataset: which dataset the pairs' relative paths belong to (e.g. its root folder).
    """

    def __init__(self, path: str | Path, dataset: str = "") -> None:
        self.path = Path(path)
        self.dataset = str(dataset)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:  # says so if the file is not a database
            ready = db.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION
        if not ready:
            with self._write():  # creates the schema
                pass

    def _connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return connect(self.path, ReviewError, "verdicts")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction (core.review.database), creating the schema when missing."""
        with self._connect() as db, transaction(db, _create_schema):
            yield db

    def record(self, a: str, b: str, verdict: str, *, reviewer: str, kind: str = "",
               note: str = "", run: str = "", threshold: float | None = None,
               seen: int = ANY) -> Verdict:
        """Append a verdict on the pair (a, b), if the pair is as the reviewer saw it.

        Args:
            a, b: image paths relative to the dataset root, in either order.
            verdict: one of VERDICTS.
            reviewer: who decided (non-empty).
            kind: one of KINDS for a duplicate; empty otherwise.
            note: free text.
            run: the model run whose candidates were reviewed.
            threshold: the threshold in force.
            seen: the pair's state when it was shown (`state(a, b)`): the last history id,
                0 for none. Another verdict or an undo since then refuses this one.

        Returns:
            The stored row.

        Raises:
            StaleVerdict: the pair changed since `seen` (nothing is written).
        """
        seen_by_key = None if seen == ANY else {pair_key(str(a), str(b)): int(seen)}
        rows = self._insert([(a, b)], verdict, reviewer, kind, note, run, threshold, False,
                            seen_by_key)
        return rows[0]

    def record_many(self, pairs: Iterable[tuple[str, str]], verdict: str, *, reviewer: str,
                    kind: str = "", note: str = "", run: str = "", threshold: float | None = None,
                    only_pending: bool = True,
                    seen: Mapping[tuple[str, str], int] | None = None,
                    kinds: Mapping[tuple[str, str], str] | None = None) -> list[Verdict]:
        """Append one verdict to many pairs in one transaction (one batch, undone together).

        Args:
            pairs: (a, b) paths.
            verdict, reviewer, kind, note, run, threshold: as in `record`.
            only_pending: skip pairs that already have a current verdict.
            seen: each pair's state when the list was shown (`states()`; a pair not in it was
                shown in state 0); if any pair has changed since, nothing is written.
            kinds: each pair's own kind (e.g. the one the search found), instead of `kind`;
                every pair must have one.

        Returns:
            The stored rows (possibly none).

        Raises:
            StaleVerdict: a pair changed since `seen` (`changed` lists them; nothing is written).
        """
        seen_by_key = None if seen is None else {pair_key(*k): int(v) for k, v in seen.items()}
        kind_by_key = None if kinds is None else {pair_key(*k): str(v) for k, v in kinds.items()}
        return self._insert(list(pairs), verdict, reviewer, kind, note, run, threshold,
                            only_pending, seen_by_key, kind_by_key)

    def _insert(self, pairs: list[tuple[str, str]], verdict: str, reviewer: str, kind: str,
                note: str, run: str, threshold: float | None, only_pending: bool,
                seen: dict[tuple[str, str], int] | None = None,
                kinds: dict[tuple[str, str], str] | None = None) -> list[Verdict]:
        keys = list(dict.fromkeys(pair_key(str(a), str(b)) for a, b in pairs))
        if kinds is None:
            reviewer, kind, note = _check(verdict, reviewer, kind, note)
            kind_of = dict.fromkeys(keys, kind)
        else:
            kind_of = {}
            for key in keys:
                reviewer, kind_of[key], note = _check(verdict, reviewer, kinds.get(key, ""), note)
            if not keys:
                reviewer, _, note = _check(verdict, reviewer, kind, note)
        batch, now = uuid.uuid4().hex, time.time()
        out = []
        with self._write() as db:
            if seen is not None:
                now_states = self._states(db)
                changed = [k for k in keys if now_states.get(k, 0) != seen.get(k, 0)]
                if changed and len(pairs) == 1:
                    raise StaleVerdict(STALE, changed)
                if changed:
                    names = "; ".join(" · ".join(k) for k in changed)
                    raise StaleVerdict(f"{len(changed)} of {len(keys)} pairs changed since they were "
                                       f"shown ({names}): nothing was saved; the page now shows "
                                       "them as they are", changed)
            decided = set(self._current_keys(db)) if only_pending else set()
            for key in keys:
                if key in decided:
                    continue
                values = (self.dataset, *key, verdict, kind_of[key], note, reviewer, now, str(run),
                          None if threshold is None else float(threshold), batch, None)
                cur = db.execute(f"INSERT INTO verdicts ({', '.join(_COLUMNS[1:])}) "
                                 f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})", values)
                out.append(Verdict(int(cur.lastrowid or 0), *values))
        return out

    def last_action(self, reviewer: str) -> str:
        """The batch id of the reviewer's latest live action ('' when none): what Undo undoes."""
        reviewer = _clean_reviewer(reviewer)
        with self._connect() as db:
            if not _has_table(db):
                return ""
            return self._last_batch(db, reviewer)

    def _last_batch(self, db: sqlite3.Connection, reviewer: str) -> str:
        row = db.execute(f"SELECT batch FROM ({_LIVE}) WHERE reviewer = ? ORDER BY id DESC "
                         "LIMIT 1", (self.dataset, reviewer)).fetchone()
        return "" if row is None else str(row[0])

    def undo_last(self, reviewer: str, seen: str | None = None) -> list[Verdict]:
        """Cancel the reviewer's latest live action (one verdict, or one bulk batch).

        Earlier verdicts on those pairs become current again. Calling it again walks further
        back. Returns the cancelled rows (empty when there is nothing to undo).

        Args:
            reviewer: whose action.
            seen: `last_action(reviewer)` when the Undo button was shown; None to skip the check.

        Raises:
            StaleVerdict: the reviewer's latest action is no longer the one shown (another
                session of theirs gave or undid a verdict since).
        """
        reviewer = _clean_reviewer(reviewer)
        with self._write() as db:
            last = self._last_batch(db, reviewer)
            if seen is not None and last != seen:
                raise StaleVerdict("your last verdict changed since this page was shown "
                                   "(another window?); the page now shows it as it is")
            if not last:
                return []
            row = (last,)
            undone = [_row(r) for r in db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM ({_LIVE}) WHERE batch = ? ORDER BY id",
                (self.dataset, row[0]))]
            batch, now = uuid.uuid4().hex, time.time()
            for v in undone:
                db.execute(f"INSERT INTO verdicts ({', '.join(_COLUMNS[1:])}) "
                           f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})",
                           (self.dataset, v.path_a, v.path_b, _UNDO, "", "", reviewer, now,
                            v.run, v.threshold, batch, v.id))
        return undone

    def current(self) -> dict[tuple[str, str], Verdict]:
        """The latest live verdict of every reviewed pair, keyed by (path_a, path_b)."""
        with self._connect() as db:
            if not _has_table(db):
                return {}
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM (SELECT *, ROW_NUMBER() OVER "
                f"(PARTITION BY path_a, path_b ORDER BY id DESC) AS rn FROM ({_LIVE})) "
                "WHERE rn = 1 ORDER BY id", (self.dataset,)).fetchall()
        return {(r[2], r[3]): _row(r) for r in rows}

    def state(self, a: str, b: str) -> int:
        """The pair's state for `record(seen=...)`: its last history id (undo rows count), 0 for none."""
        key = pair_key(str(a), str(b))
        with self._connect() as db:
            if not _has_table(db):
                return 0
            row = db.execute("SELECT MAX(id) FROM verdicts WHERE dataset = ? AND path_a = ? "
                             "AND path_b = ?", (self.dataset, *key)).fetchone()
        return int(row[0] or 0)

    def states(self) -> dict[tuple[str, str], int]:
        """`state` of every pair with a history (pairs not listed are in state 0)."""
        with self._connect() as db:
            return self._states(db) if _has_table(db) else {}

    def _states(self, db: sqlite3.Connection) -> dict[tuple[str, str], int]:
        return {(r[0], r[1]): int(r[2]) for r in db.execute(
            "SELECT path_a, path_b, MAX(id) FROM verdicts WHERE dataset = ? GROUP BY path_a, path_b",
            (self.dataset,))}

    def _current_keys(self, db: sqlite3.Connection) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in db.execute(
            f"SELECT DISTINCT path_a, path_b FROM ({_LIVE})", (self.dataset,))]

    def history(self, a: str | None = None, b: str | None = None) -> list[Verdict]:
        """Every row for the dataset (or for one pair), undo rows included, oldest first."""
        query, args = f"SELECT {', '.join(_COLUMNS)} FROM verdicts WHERE dataset = ?", [self.dataset]
        if a is not None and b is not None:
            query += " AND path_a = ? AND path_b = ?"
            args += list(pair_key(a, b))
        with self._connect() as db:
            if not _has_table(db):
                return []
            return [_row(r) for r in db.execute(query + " ORDER BY id", args)]

    def integrity_ok(self) -> bool:
        """True when SQLite's `PRAGMA integrity_check` reports ok."""
        with self._connect() as db:
            return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _create_schema(db: sqlite3.Connection) -> None:
    if db.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


def _has_table(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'verdicts'").fetchone() is not None


def _row(r: tuple) -> Verdict:
    v = Verdict(*r)
    return replace(v, kind=LEGACY_KINDS[v.kind]) if v.kind in LEGACY_KINDS else v


def _clean_reviewer(reviewer: str) -> str:
    name = " ".join(str(reviewer or "").split())
    if not name:
        raise ReviewError("enter a reviewer name before giving a verdict")
    if len(name) > 100:
        raise ReviewError("reviewer name is longer than 100 characters")
    return name


def _check(verdict: str, reviewer: str, kind: str, note: str) -> tuple[str, str, str]:
    if verdict not in VERDICTS:
        raise ReviewError(f"unknown verdict {verdict!r} (choose from {', '.join(VERDICTS)})")
    kind = LEGACY_KINDS.get(kind or "", kind or "")
    if verdict == "duplicate" and kind not in KINDS:
        raise ReviewError(f"a duplicate needs a kind: one of {', '.join(KINDS)}")
    if verdict != "duplicate" and kind:
        raise ReviewError(f"only a duplicate has a kind, not a {verdict.replace('_', ' ')}")
    note = str(note or "").strip()
    if len(note) > 2000:
        raise ReviewError("note is longer than 2000 characters")
    return _clean_reviewer(reviewer), kind, note
