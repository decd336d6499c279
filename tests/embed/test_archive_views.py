"""An archive is listed with the dataset's views rule: `list_archive` (embed-archive, add) leaves
laterals and non-radiograph DICOM films out, names each with its reason, keeps them with
`views="all"`, and reads a tree's headers once through the cache it is given.

Before, `list_archive` listed every image file: the lateral and the CT slice of the DICOM tree
were embedded into an archive and added to a run, though `train` on the same tree left them out.
"""

from __future__ import annotations

import pydicom
import pytest

from core.data.dataset import ListingOptions, scan_dataset
from core.embed.shard_format import ArchiveError
from core.embed.shards import archive_listing, list_archive
from tests.archives import dicom_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory):
    return dicom_tree(tmp_path_factory.mktemp("hospital"))


def test_laterals_and_ct_are_left_out_with_the_reason(tree) -> None:
    listing = archive_listing(tree.root)
    assert tree.lateral not in listing.files and tree.ct not in listing.files
    assert dict(listing.left_out) == {tree.lateral: "lateral view (ViewPosition LL)",
                                      tree.ct: "not a radiograph (Modality CT)"}
    assert tree.corrupt in listing.files  # unreadable files stay in: the shards name why
    assert list_archive(tree.root) == listing.files


def test_the_archive_and_the_dataset_listing_agree(tree) -> None:
    dataset = scan_dataset(tree.root)
    assert set(list_archive(tree.root)) == {s.path for s in dataset.samples} | {tree.corrupt}
    left = {s.path: s.reason for s in dataset.skipped if s.path != tree.corrupt}
    assert dict(archive_listing(tree.root).left_out) == left


def test_views_all_keeps_every_file(tree) -> None:
    listing = archive_listing(tree.root, views="all")
    assert listing.left_out == [] and len(listing.files) == tree.n_files
    with pytest.raises(ArchiveError, match="unknown --views 'side'"):
        archive_listing(tree.root, views="side")


def test_a_second_listing_reads_no_header(tree, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = tmp_path / "out" / "dicom-headers.csv"
    first = archive_listing(tree.root, header_cache=cache)
    assert len(calls) == tree.n_files and cache.is_file()
    calls.clear()
    assert archive_listing(tree.root, header_cache=cache) == first and calls == []
    # the same cache serves the dataset listing of the tree: one parse for both
    scan_dataset(tree.root, options=ListingOptions(header_cache=cache))
    assert calls == []
