"""Patient positives: two films of one patient end up in one pair; a lone film pairs with itself."""

import torch

from core.config import AugmentConfig
from core.model.transforms import XRayViews
from core.train.views import PatientPairDataset, patient_partners


def _films(n: int) -> torch.Tensor:
    # film i is a flat image of brightness 20 * (i + 1): a view's mean tells its film apart
    return torch.stack([torch.full((1, 40, 40), 20 * (i + 1), dtype=torch.uint8) for i in range(n)])


def _film_of(view: torch.Tensor, n: int) -> int:
    means = [float(XRayViews(32, _still()).one(_films(n)[i]).mean()) for i in range(n)]
    return min(range(n), key=lambda i: abs(means[i] - float(view.mean())))


def _still() -> AugmentConfig:  # no photometric change, so a view keeps its film's brightness
    return AugmentConfig(crop_scale_min=0.9, rotation_deg=0.0, brightness=0.0, contrast=0.0, blur_prob=0.0)


def test_partners_by_patient():
    assert patient_partners(["A", "B", "A", None, "", "A"]) == [[2, 5], [], [0, 5], [], [], [0, 2]]


def test_two_films_of_one_patient_make_one_pair():
    ds = PatientPairDataset(_films(3), XRayViews(32, _still()), ["A", "A", "B"], prob=1.0)
    torch.manual_seed(0)
    for _ in range(5):
        v1, v2 = ds[0]
        assert (_film_of(v1, 3), _film_of(v2, 3)) == (0, 1)
        v1, v2 = ds[1]
        assert (_film_of(v1, 3), _film_of(v2, 3)) == (1, 0)


def test_a_lone_film_pairs_with_itself():
    ds = PatientPairDataset(_films(3), XRayViews(32, _still()), ["A", "A", "B"], prob=1.0)
    for _ in range(5):
        v1, v2 = ds[2]
        assert _film_of(v1, 3) == _film_of(v2, 3) == 2
    ds = PatientPairDataset(_films(2), XRayViews(32, _still()), ["", None], prob=1.0)
    assert ds.partner(0) == 0 and ds.partner(1) == 1  # unknown ids are never paired


def test_probability_mixes_both_kinds_of_positive():
    ds = PatientPairDataset(_films(2), XRayViews(32, _still()), ["A", "A"], prob=0.5)
    torch.manual_seed(1)
    partners = [ds.partner(0) for _ in range(400)]
    assert 120 < partners.count(1) < 280  # about half; 0 and 400 would mean the option is ignored
    ds0 = PatientPairDataset(_films(2), XRayViews(32, _still()), ["A", "A"], prob=0.0)
    assert {ds0.partner(0) for _ in range(50)} == {0}


def test_the_option_is_checked_and_saved_with_the_config():
    import pytest

    from core.config import ConfigError, RunConfig, make_run_config

    config = make_run_config("/data", "tiny", patient_positives=0.5)
    assert RunConfig.from_dict(config.to_dict()).train.patient_positives == 0.5
    old = config.to_dict()
    del old["train"]["patient_positives"]  # a checkpoint written before the option existed
    assert RunConfig.from_dict(old).train.patient_positives == 0.0
    with pytest.raises(ConfigError, match="patient-positives"):
        make_run_config("/data", "tiny", patient_positives=1.5)
