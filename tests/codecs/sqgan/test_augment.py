"""Augmentation: identity when disabled, labels stay valid, objects get pasted."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from semcomm.codecs.sqgan.augment import augment_batch, paste_objects, warp
from semcomm.codecs.sqgan.config import AugmentConfig

OFF = AugmentConfig(rotate_p=0, zoom_p=0, hflip_p=0, jitter_p=0, paste_p=0)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 3, 32, 64, generator=g)
    s = torch.randint(0, 19, (3, 32, 64), generator=g)
    s[s == 6] = 0  # no traffic lights, signs ...
    s[s == 7] = 0
    s[1, 5:9, 10:12] = 6  # ... except one light and one sign in image 1
    s[1, 3:6, 40:44] = 7
    s[2, :2] = 255
    return x, s


def test_disabled_augmentation_is_the_identity() -> None:
    x, s = _batch()
    xa, sa = augment_batch(x, s, OFF, np.random.default_rng(0))
    assert torch.equal(xa, x) and torch.equal(sa, s)


def test_geometry_keeps_labels_valid_and_is_seeded() -> None:
    x, s = _batch()
    cfg = AugmentConfig(rotate_p=1, zoom_p=1, hflip_p=1, jitter_p=1, paste_p=1)
    a = augment_batch(x, s, cfg, np.random.default_rng(1))
    b = augment_batch(x, s, cfg, np.random.default_rng(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # same seed, same numbers
    xa, sa = a
    assert xa.shape == x.shape and sa.shape == s.shape and sa.dtype == torch.int64
    assert float(xa.min()) >= 0 and float(xa.max()) <= 1
    values = set(sa.unique().tolist())
    assert values <= set(range(19)) | {255}
    assert not torch.equal(sa, s)


def test_horizontal_flip_warp_is_exact() -> None:
    x, s = _batch()
    theta = torch.tensor([[-1.0, 0, 0], [0, 1.0, 0]]).expand(3, 2, 3)
    xw, sw = warp(x, s, theta)
    assert torch.equal(sw, s.flip(-1))
    torch.testing.assert_close(xw, x.flip(-1))


def test_paste_copies_lights_and_signs_into_other_images() -> None:
    x, s = _batch()
    cfg = dataclasses.replace(OFF, paste_p=1.0, paste_max=8, paste_min_pixels=4)
    xp, sp = paste_objects(x, s, cfg, np.random.default_rng(0))
    light = s[1] == 6
    sign = s[1] == 7
    for i in (0, 2):
        assert torch.equal(sp[i][light], s[1][light]) and torch.equal(sp[i][sign], s[1][sign])
        assert torch.equal(xp[i][:, light], x[1][:, light])
        untouched = ~(light | sign)
        assert torch.equal(sp[i][untouched], s[i][untouched])
    assert torch.equal(sp[1], s[1])  # image 1 has no other source to take from
    # Inputs are not modified in place.
    assert not (s[0] == 6).any()


def test_paste_skips_overlapping_objects() -> None:
    x, s = _batch()
    s[0, 5:9, 10:12] = 7  # image 0 already has a sign where image 1's light is
    cfg = dataclasses.replace(OFF, paste_p=1.0, paste_max=8, paste_min_pixels=1)
    _, sp = paste_objects(x, s, cfg, np.random.default_rng(0))
    assert (sp[0, 5:9, 10:12] == 7).all()
