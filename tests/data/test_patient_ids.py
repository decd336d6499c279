"""Patient ids are shown as keyed names: the key file, the name's form, and what it hides."""

from __future__ import annotations

import hashlib
import hmac
import stat

from core.data.patient_ids import KEY_FILE, display_patient, display_patients, patient_key


def test_the_key_is_made_once_private_and_kept(tmp_path):
    key = patient_key(tmp_path)
    path = tmp_path / KEY_FILE
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert patient_key(tmp_path) == key  # the same key next time: names stay the same


def test_a_missing_workspace_is_not_made(tmp_path):
    assert len(patient_key(tmp_path / "nope")) == 32
    assert not (tmp_path / "nope").exists()


def test_the_name_is_a_short_keyed_hash_of_the_id(tmp_path):
    key = patient_key(tmp_path)
    name = display_patient("MRN4711000", key)
    expected = hmac.new(key, b"MRN4711000", hashlib.sha256).hexdigest()[:10]
    assert name == f"pt-{expected}" and "4711" not in name
    assert display_patient("MRN4711000", b"another key" * 3) != name  # no key, no lookup
    assert display_patient("", key) == "" and display_patient(None, key) == ""
    assert display_patients(["a", "", "a"], key) == [display_patient("a", key), "", display_patient("a", key)]
