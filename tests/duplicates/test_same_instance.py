"""Two files of one SOPInstanceUID (the same instance exported twice) are an exact pair, flagged,
even when their pixels and embeddings differ; found from the headers, not the pixels."""

from pathlib import Path

import numpy as np

from core.data.dataset import scan_dataset
from core.data.dicom_headers import read_headers
from core.duplicates.candidates import find_pairs
from core.duplicates.hashing import hash_files
from core.duplicates.rules import Rule
from core.embed.embeddings import Embeddings
from tests.archives import film, write_dicom


def test_one_sop_instance_twice_is_an_exact_flagged_pair(tmp_path: Path) -> None:
    write_dicom(tmp_path / "a" / "x.dcm", film(1), sop_uid="1.2.3.4")
    write_dicom(tmp_path / "b" / "y.dcm", 1 - film(2), sop_uid="1.2.3.4")  # other pixels
    write_dicom(tmp_path / "c.dcm", film(3), sop_uid="1.2.3.5")
    write_dicom(tmp_path / "d.dcm", film(4), sop_uid="1.2.3.6")
    paths = sorted(s.path for s in scan_dataset(tmp_path).samples)
    assert paths == ["a/x.dcm", "b/y.dcm", "c.dcm", "d.dcm"]
    vectors = np.eye(4, dtype=np.float32)  # orthogonal: no embedding says "duplicate"
    emb = Embeddings(paths, [""] * 4, ["train", "test", "train", "train"], [""] * 4, vectors)
    hashes = hash_files(tmp_path, paths)
    assert not hashes.exact(0, 1)
    rule = Rule(0.99, 0)
    assert [p for p in find_pairs(emb, hashes, rule) if p.flagged] == []  # pixels alone: nothing
    headers = read_headers(tmp_path, paths)
    pairs = find_pairs(emb, hashes, rule, instances=[headers[p].sop_uid for p in paths])
    flagged = [p for p in pairs if p.flagged]
    assert [(p.a, p.b, p.exact, p.cross_split) for p in flagged] == [("a/x.dcm", "b/y.dcm", True, True)]
    assert flagged[0].score == 0.0
