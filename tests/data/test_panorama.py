"""StreetScenes panorama mode: determinism, labels, sizes, and the 360 x 180 geometry.

Would fail if panoramas depended on anything but (seed, split, index), if the pinhole
images changed (pinned fingerprints), if a label outside 0..18 were written, if the horizon
left the middle rows, if the street stopped running along longitude 0 / 180 deg, if the
halves were stitched in the wrong order (the wrap-around columns would disagree), or if
the pixel-centre convention drifted from semcomm.spherical.
"""

import numpy as np
import pytest

from semcomm.data import NUM_CLASSES, StreetScenes, build_dataset
from semcomm.data.render import HalfPanorama
from semcomm.data.streetscenes import (
    BUILDING,
    CAR,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    VEG,
)  # fmt: skip
from semcomm.spherical import equirect_lonlat

H, W = 128, 256
GROUND = [ROAD, SIDEWALK, TERRAIN]


@pytest.fixture(scope="module")
def labels20() -> np.ndarray:
    """[20, H, W] uint8 trainIds of 20 validation panoramas."""
    ds = StreetScenes("val", 20, (H, W), seed=0, projection="equirectangular")
    out = []
    for s in ds:
        assert s.image.dtype == np.uint8 and s.image.shape == (H, W, 3)
        assert s.labels.dtype == np.uint8 and s.labels.shape == (H, W)
        out.append(s.labels)
    return np.stack(out)


def _rows(lat_hi: float, lat_lo: float) -> slice:
    """Rows whose pixel-centre latitude lies in [lat_lo, lat_hi] degrees."""
    _, lat = equirect_lonlat(H, W)
    idx = np.nonzero((lat <= lat_hi) & (lat >= lat_lo))[0]
    return slice(int(idx[0]), int(idx[-1]) + 1)


def _col(lon: float) -> int:
    lon_c, _ = equirect_lonlat(H, W)
    return int(np.argmin(np.abs((lon_c - lon + 180) % 360 - 180)))


def test_same_seed_index_gives_identical_panoramas():
    a = StreetScenes("train", 3, (64, 128), seed=5, projection="equirectangular")
    b = StreetScenes("train", 3, (64, 128), seed=5, projection="equirectangular")
    sa, sb = a[2], b[2]
    np.testing.assert_array_equal(sa.image, sb.image)
    np.testing.assert_array_equal(sa.labels, sb.labels)
    assert sa.name == "streetscenes360/train/000002"
    assert a.projection == "equirectangular"
    assert not np.array_equal(sa.image, a[1].image)
    pin = StreetScenes("train", 3, (64, 128), seed=5)
    assert pin.projection == "pinhole"
    assert not np.array_equal(sa.image, pin[2].image)


def test_pinhole_images_unchanged():
    """Pinned fingerprints of the pinhole generator (a segmenter was trained on it): per
    image, the pixel count of each class (void last) and the mean colour.

    Not a byte hash: NumPy's float kernels differ by CPU (AVX-512 or not), which moves a
    few boundary pixels, so the check allows 1% of the pixels and 1 grey level. A change
    to the scene layout or palette moves far more. Regenerate only on purpose: print
    ``got`` below and paste it.
    """
    ds = StreetScenes("train", 3, (64, 128), seed=0)
    got = []
    for smp in ds:
        lab = np.where(smp.labels == 255, NUM_CLASSES, smp.labels)
        counts = np.bincount(lab.ravel(), minlength=NUM_CLASSES + 1)
        got.append((counts.tolist(), smp.image.reshape(-1, 3).mean(axis=0).round(2).tolist()))
    for (counts, mean), (ref_counts, ref_mean) in zip(got, PINHOLE_FINGERPRINT, strict=True):
        assert np.abs(np.subtract(counts, ref_counts)).sum() <= 0.01 * 64 * 128, got
        assert np.abs(np.subtract(mean, ref_mean)).max() <= 1.0, got


PINHOLE_FINGERPRINT = [
    ([4092, 396, 1572, 6, 135, 54, 4, 0, 32, 1, 757, 80, 0, 62, 981, 20, 0, 0, 0, 0],
     [71.01, 69.4, 71.4]),
    ([2381, 1002, 1511, 0, 650, 354, 2, 97, 691, 269, 1069, 0, 0, 141, 0, 0, 25, 0, 0, 0],
     [100.94, 114.56, 130.71]),
    ([3229, 33, 571, 10, 4, 33, 0, 1, 381, 0, 1286, 6, 0, 64, 2378, 0, 190, 6, 0, 0],
     [98.88, 109.14, 99.26]),
]


def test_labels_valid_and_main_classes_occur(labels20):
    values = set(np.unique(labels20).tolist())
    assert values <= set(range(NUM_CLASSES)), values  # no ego vehicle, so no void
    for c in (ROAD, SIDEWALK, BUILDING, SKY, CAR, VEG):
        assert c in values, c


@pytest.mark.parametrize(
    "size", [(128, 128), (128, 512), (65, 130), (64, 127)], ids=lambda s: f"{s[0]}x{s[1]}"
)
def test_size_must_be_2_to_1_with_even_height(size):
    with pytest.raises(ValueError, match=rf"{size[0]}x{size[1]}.*H x 2H"):
        StreetScenes("train", 1, size, projection="equirectangular")


def test_unknown_projection_is_named():
    with pytest.raises(ValueError, match="'fisheye'.*equirectangular"):
        StreetScenes("train", 1, (64, 128), projection="fisheye")


def test_build_dataset_takes_projection_from_params():
    params = {"split": "val", "count": 2, "size": [64, 128], "seed": 0}  # as YAML gives it
    ds = build_dataset("streetscenes", **params, projection="equirectangular")
    assert isinstance(ds, StreetScenes) and ds.projection == "equirectangular"
    assert ds[1].labels.shape == (64, 128)


def test_horizon_is_the_middle_row(labels20):
    assert not (labels20[:, H // 2 :] == SKY).any(), "sky below the horizon"
    assert not np.isin(labels20[:, : H // 2], GROUND).any(), "ground above the horizon"
    # Not vacuous: sky and road reach the rows next to the horizon.
    assert (labels20[:, H // 2 - 1] == SKY).any() and (labels20[:, H // 2] == ROAD).any()


def test_bottom_rows_are_ground(labels20):
    # The camera stands on the road, so the ground within ~0.4 m of its foot is paved.
    assert np.isin(labels20[:, _rows(-80, -90)], [ROAD, SIDEWALK]).all()


def test_street_runs_along_longitude_0_and_180(labels20):
    below = _rows(-20, -90)
    for lon in (0.0, 180.0):
        road = (labels20[:, below, _col(lon)] == ROAD).mean()
        assert road > 0.9, (lon, road)
        sky = (labels20[:, _rows(40, 20), _col(lon)] == SKY).mean()
        assert sky > 0.8, (lon, sky)  # looking down the street: open sky
    # Sideways (lon +-90) the facades are near: little sky just above the horizon.
    near = _rows(10, 0)
    ahead = (labels20[:, near, _col(0.0)] != SKY).mean()
    for lon in (-90.0, 90.0):
        side = (labels20[:, near, _col(lon)] != SKY).mean()
        assert side > ahead + 0.15, (lon, side, ahead)


def test_longitude_wraps_around(labels20):
    wrap = (labels20[:, :, 0] == labels20[:, :, -1]).mean()
    assert wrap > 0.95, wrap  # the seams at lon +-90 reach only ~0.8 (see the docs)


def test_pixel_centres_follow_spherical_conventions():
    lon, lat = equirect_lonlat(H, W)
    half = HalfPanorama(H, W // 2, 1.6)
    np.testing.assert_allclose(np.degrees(half.lon), lon[W // 4 : 3 * W // 4], atol=1e-9)
    np.testing.assert_allclose(np.degrees(half.lat), lat, atol=1e-9)
