"""Patient identifiers are personal data: what a page, an export or a log shows instead.

A patient id (a manifest's `patient_id`, a DICOM header's `PatientID`) is shown as a short
keyed hash, `pt-` and the first 10 hex digits of HMAC-SHA256(key, id). The key is random and
kept in the workspace (`<workspace>/patient-key`, mode 0600, made on first use), so the same
patient reads the same on every page and in every download of one workspace, and nobody
without the key can hash candidate ids to find one. Internal files (items.csv, splits.csv)
keep the real id: patient-disjoint splits and same-patient metrics need it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

KEY_FILE = "patient-key"
PREFIX = "pt-"
DIGITS = 10  # 40 bits: distinct for millions of patients, short enough to read aloud
_KEY_BYTES = 32
_process_key: bytes | None = None  # used only where the workspace cannot hold a key


def patient_key(workspace: str | Path) -> bytes:
    """The workspace's patient key, made (random, mode 0600) on first use.

    A workspace that cannot be written gets a key that lasts as long as this process: the
    ids are still hidden, only the names change with the next start.
    """
    path = Path(workspace) / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 16:
            return key
    except OSError:
        pass
    if not path.parent.is_dir():  # showing a patient never makes a workspace
        return _fallback()
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another session made it a moment ago (or a short one is there)
        try:
            existing = path.read_bytes()
        except OSError:
            existing = b""
        return existing if len(existing) >= 16 else _fallback()
    except OSError:
        return _fallback()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _fallback() -> bytes:
    global _process_key
    if _process_key is None:
        _process_key = secrets.token_bytes(_KEY_BYTES)
    return _process_key


def display_patient(patient_id: str | None, key: bytes) -> str:
    """What is shown for a patient id: `pt-` and 10 hex digits of its keyed hash ("" for none).

    Args:
        patient_id: the real id ("" or None when unknown).
        key: `patient_key(workspace)`.
    """
    if not patient_id:
        return ""
    digest = hmac.new(key, str(patient_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:DIGITS]


def display_patients(patient_ids: Iterable[str | None], key: bytes) -> list[str]:
    """`display_patient` of each id, each distinct id hashed once."""
    seen: dict[str, str] = {}
    out = []
    for pid in patient_ids:
        pid = pid or ""
        if pid not in seen:
            seen[pid] = display_patient(pid, key)
        out.append(seen[pid])
    return out
