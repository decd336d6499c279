"""Batch views: XRayViews' augmentations made a batch at a time, checked by their properties."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.config import AugmentConfig
from core.model.transforms import MEAN, STD, XRayViews, normalize
from core.train.batch_views import BatchViews
from core.train.views import FilmPairs, patient_partners

STILL = AugmentConfig(crop_scale_min=1.0, rotation_deg=0.0, brightness=0.0, contrast=0.0, blur_prob=0.0)


def _films(b: int = 8, s: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(20, 230, s)[None, :].expand(s, s)  # a horizontal ramp: flips show
    noise = torch.rand(b, 1, s, s, generator=g) * 20
    return (ramp[None, None] + noise).clamp(0, 255).to(torch.uint8)  # (B, 1, S, S)


def test_shape_dtype_and_seeded():
    films = _films()
    torch.manual_seed(3)
    a = BatchViews(32)(films)
    torch.manual_seed(3)
    b = BatchViews(32)(films)
    assert a.shape == (8, 1, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, BatchViews(32)(films))  # a new draw differs
    lo, hi = (0 - MEAN) / STD, (1 - MEAN) / STD
    assert a.min() >= lo - 1e-5 and a.max() <= hi + 1e-5


def test_without_augmentation_it_is_the_resized_film():
    films = _films()
    expected = normalize((F.interpolate(films.float() / 255, size=(32, 32), mode="bilinear",
                                        align_corners=False) * 255).round().to(torch.uint8))
    out = BatchViews(32, STILL)(films)
    assert (out - expected).abs().max() < 0.05  # bilinear resampling vs interpolate: rounding only


def test_views_of_one_batch_differ_per_film():
    same = _films(1).expand(16, 1, 40, 40).contiguous()
    out = BatchViews(32)(same)
    assert len({round(float(v.mean()), 4) for v in out}) > 8  # each film draws its own crop/jitter


def test_rotation_blackens_corners_and_flip_mirrors():
    films = torch.full((64, 1, 40, 40), 200, dtype=torch.uint8)
    out = BatchViews(32, AugmentConfig(crop_scale_min=1.0, rotation_deg=10.0, brightness=0.0,
                                       contrast=0.0, blur_prob=0.0))(films)
    black = (0 - MEAN) / STD
    corners = out[:, 0, 0, 0]
    assert (corners - black).abs().lt(0.1).float().mean() > 0.5  # most rotations cut the corner
    assert (out[:, 0, 16, 16] - (200 / 255 - MEAN) / STD).abs().max() < 0.05  # the centre kept
    flipped = BatchViews(32, AugmentConfig(crop_scale_min=1.0, rotation_deg=0.0, brightness=0.0,
                                           contrast=0.0, blur_prob=0.0, hflip=True))(_films(64))
    left_brighter = (flipped[:, 0, :, :8].mean((1, 2)) > flipped[:, 0, :, -8:].mean((1, 2))).float().mean()
    assert 0.2 < left_brighter < 0.8  # about half of the ramps mirrored


def test_blur_smooths_and_jitter_spreads_like_xrayviews():
    torch.manual_seed(0)
    films = _films(64)
    cfg = AugmentConfig()
    mine = BatchViews(32, cfg)(films)
    theirs = torch.stack([XRayViews(32, cfg).one(f) for f in films])
    # the same augmentations: per-view mean brightness spreads alike (within 30 %)
    assert abs(float(mine.mean((1, 2, 3)).std()) / float(theirs.mean((1, 2, 3)).std()) - 1) < 0.3
    noise = (torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    blurry = BatchViews(32, AugmentConfig(crop_scale_min=1.0, rotation_deg=0.0, brightness=0.0, contrast=0.0,
                                          blur_prob=1.0, blur_sigma_max=1.0))(noise)
    sharp = BatchViews(32, STILL)(noise)
    rough = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert rough(blurry) < 0.8 * rough(sharp)


def test_film_pairs_give_a_patients_other_film():
    films = torch.arange(3, dtype=torch.uint8)[:, None, None, None].expand(3, 1, 4, 4).contiguous()
    pairs = FilmPairs(films, patient_partners(["A", "A", "B"]), prob=1.0)
    a, b = pairs[0]
    assert int(a.max()) == 0 and int(b.max()) == 1
    a, b = pairs[2]
    assert int(a.max()) == int(b.max()) == 2  # a lone film pairs with itself
    plain = FilmPairs(films)
    assert all(plain.partner(i) == i for i in range(3))
