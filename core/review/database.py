"""The workspace's review database (verdicts, tags, saved views): one way to open it and one
way to write to it.

WAL journal (readers never block the writer), a busy timeout so two writers queue instead of
failing, synchronous=FULL, and every write one `BEGIN IMMEDIATE` transaction: a killed writer
leaves its whole transaction or none of it. SQLite's errors become one line naming the file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import UserError


def reason(path: Path, e: sqlite3.Error, holds: str) -> str:
    """SQLite's reason, or the cause a user can act on where its words hide it: a read-only file
    system answers only 'unable to open database file' (WAL needs to write beside the file).
    `holds`: what the database keeps, for the message ("verdicts", "tags")."""
    try:
        read_only = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        return (f"the file system is read-only: {holds} cannot be read or stored here "
                f"(the database keeps every earlier one; make the workspace writable)")
    return str(e).splitlines()[0] if str(e) else type(e).__name__


@contextmanager
def connect(path: Path, error: type[UserError], holds: str) -> Iterator[sqlite3.Connection]:
    """An autocommit connection with the durability settings above; a failure raises `error`."""
    try:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    except sqlite3.Error as e:
        raise error(f"cannot open the review database {path}: {reason(path, e, holds)}") from None
    try:
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        yield db
    except sqlite3.DatabaseError as e:
        raise error(f"review database {path}: {reason(path, e, holds)}") from None
    finally:
        db.close()


@contextmanager
def transaction(db: sqlite3.Connection, prepare: Callable[[sqlite3.Connection], None]
                ) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction (concurrent writers wait for each other, none is lost);
    `prepare` runs first inside it (e.g. creating the schema)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        prepare(db)
        yield db
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
