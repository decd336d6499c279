"""Reviewers' verdicts on candidate pairs: an append-only SQLite history in the workspace.

Every verdict is a new row (pair, verdict, kind, note, reviewer, time, model run, threshold);
a changed mind is another row, and the current view is the latest live row per pair. Undo
appends an 'undo' row pointing at the rows it cancels, so the history keeps everything.

Concurrency and durability: WAL journal (readers never block the writer), a busy timeout so
two writers queue instead of failing, and every write in one `BEGIN IMMEDIATE` transaction
with synchronous=FULL. A killed writer leaves either its whole transaction or none of it.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError

VERDICTS = ("duplicate", "not_duplicate", "skip")
DUPLICATE_KINDS = ("same_image", "reencoded_resized", "cropped_rotated", "same_patient_other_study")
KIND_LABELS = {
    "same_image": "same image", "reencoded_resized": "re-encoded or resized",
    "cropped_rotated": "cropped or rotated", "same_patient_other_study": "same patient, other study",
}
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

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as e:
            raise ReviewError(f"cannot open the review database {self.path}: {e}") from None
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            yield db
        except sqlite3.DatabaseError as e:
            raise ReviewError(f"review database {self.path}: {e}") from None
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: concurrent writers wait for each other, none is lost."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def record(self, a: str, b: str, verdict: str, *, reviewer: str, kind: str = "",
               note: str = "", run: str = "", threshold: float | None = None) -> Verdict:
        """Append a verdict on the pair (a, b).

        Args:
            a, b: image paths relative to the dataset root, in either order.
            verdict: one of VERDICTS.
            reviewer: who decided (non-empty).
            kind: one of DUPLICATE_KINDS for a duplicate; empty otherwise.
            note: free text.
            run: the model run whose candidates were reviewed.
            threshold: the threshold in force.

        Returns:
            The stored row.
        """
        rows = self._insert([(a, b)], verdict, reviewer, kind, note, run, threshold, False)
        return rows[0]

    def record_many(self, pairs: Iterable[tuple[str, str]], verdict: str, *, reviewer: str,
                    kind: str = "", note: str = "", run: str = "", threshold: float | None = None,
                    only_pending: bool = True) -> list[Verdict]:
        """Append one verdict to many pairs in one transaction (one batch, undone together).

        Args:
            pairs: (a, b) paths.
            verdict, reviewer, kind, note, run, threshold: as in `record`.
            only_pending: skip pairs that already have a current verdict.

        Returns:
            The stored rows (possibly none).
        """
        return self._insert(list(pairs), verdict, reviewer, kind, note, run, threshold, only_pending)

    def _insert(self, pairs: list[tuple[str, str]], verdict: str, reviewer: str, kind: str,
                note: str, run: str, threshold: float | None, only_pending: bool) -> list[Verdict]:
        reviewer, kind, note = _check(verdict, reviewer, kind, note)
        keys = [pair_key(str(a), str(b)) for a, b in pairs]
        batch, now = uuid.uuid4().hex, time.time()
        out = []
        with self._write() as db:
            decided = set(self._current_keys(db)) if only_pending else set()
            for key in dict.fromkeys(keys):
                if key in decided:
                    continue
                values = (self.dataset, *key, verdict, kind, note, reviewer, now, str(run),
                          None if threshold is None else float(threshold), batch, None)
                cur = db.execute(f"INSERT INTO verdicts ({', '.join(_COLUMNS[1:])}) "
                                 f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})", values)
                out.append(Verdict(int(cur.lastrowid or 0), *values))
        return out

    def undo_last(self, reviewer: str) -> list[Verdict]:
        """Cancel the reviewer's latest live action (one verdict, or one bulk batch).

        Earlier verdicts on those pairs become current again. Calling it again walks further
        back. Returns the cancelled rows (empty when there is nothing to undo).
        """
        reviewer = _clean_reviewer(reviewer)
        with self._write() as db:
            row = db.execute(f"SELECT batch FROM ({_LIVE}) WHERE reviewer = ? ORDER BY id DESC "
                             "LIMIT 1", (self.dataset, reviewer)).fetchone()
            if row is None:
                return []
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


def _has_table(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'verdicts'").fetchone() is not None


def _row(r: tuple) -> Verdict:
    return Verdict(*r)


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
    kind = kind or ""
    if verdict == "duplicate" and kind not in DUPLICATE_KINDS:
        raise ReviewError(f"a duplicate needs a kind: one of {', '.join(DUPLICATE_KINDS)}")
    if verdict != "duplicate" and kind:
        raise ReviewError(f"only a duplicate has a kind, not a {verdict.replace('_', ' ')}")
    note = str(note or "").strip()
    if len(note) > 2000:
        raise ReviewError("note is longer than 2000 characters")
    return _clean_reviewer(reviewer), kind, note
