"""360-degree geometry and metrics: viewport projection against analytic rays, WS-PSNR."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semcomm.metrics import psnr
from semcomm.spherical import (
    Viewport,
    default_viewports,
    direction_to_lonlat,
    equirect_lonlat,
    lonlat_to_direction,
    lonlat_to_pixel,
    render_viewport,
    viewport_lonlat,
    viewport_metrics,
    vpsnr,
    vssim,
    ws_psnr,
    ws_weights,
)


def coordinate_panorama(height: int, width: int) -> np.ndarray:
    """Float panorama whose channels are lon, lat (degrees) and 1: linear in the pixel
    grid, so bilinear sampling returns the exact lon/lat of any ray (away from the seam
    and the pole rows)."""
    lon, lat = equirect_lonlat(height, width)
    lon_map, lat_map = np.meshgrid(lon, lat)
    return np.stack([lon_map, lat_map, np.ones_like(lon_map)], axis=-1)


def analytic_rays(view: Viewport) -> tuple[np.ndarray, np.ndarray]:
    """Independent pixel -> (lon, lat) for pitch 0: the ray through (a, b, 1) has
    lon = yaw + atan(a) and lat = atan(b / sqrt(1 + a^2))."""
    t = math.tan(math.radians(view.fov_deg) / 2)
    tv = t * view.height / view.width
    a = ((np.arange(view.width) + 0.5) * 2 / view.width - 1) * t
    b = (1 - (np.arange(view.height) + 0.5) * 2 / view.height) * tv
    aa, bb = np.meshgrid(a, b)
    return (view.yaw_deg + np.degrees(np.arctan(aa)),
            np.degrees(np.arctan(bb / np.sqrt(1 + aa**2))))


def test_pixel_lonlat_and_direction_round_trips() -> None:
    lon, lat = equirect_lonlat(90, 180)
    assert lon[0] == pytest.approx(-179.0) and lon[-1] == pytest.approx(179.0)
    assert lat[0] == pytest.approx(89.0) and lat[-1] == pytest.approx(-89.0)
    row, col = lonlat_to_pixel(lon[[0, 17, 179]], lat[[0, 44, 89]], 90, 180)
    np.testing.assert_allclose(col, [0, 17, 179], atol=1e-9)
    np.testing.assert_allclose(row, [0, 44, 89], atol=1e-9)
    rng = np.random.default_rng(0)
    lo, la = rng.uniform(-179, 179, 50), rng.uniform(-89, 89, 50)
    d = lonlat_to_direction(lo, la)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0)
    back = direction_to_lonlat(d)
    np.testing.assert_allclose(back[0], lo, atol=1e-9)
    np.testing.assert_allclose(back[1], la, atol=1e-9)


@pytest.mark.parametrize("yaw", [0.0, 37.5, -100.0])
def test_viewport_matches_analytic_rays_at_pitch_zero(yaw: float) -> None:
    pano = coordinate_panorama(180, 360)
    view = Viewport(yaw_deg=yaw, pitch_deg=0.0, fov_deg=90.0, height=33, width=41)
    out = render_viewport(pano, view)
    lon, lat = analytic_rays(view)
    np.testing.assert_allclose(out[..., 0], lon, atol=1e-9)
    np.testing.assert_allclose(out[..., 1], lat, atol=1e-9)
    np.testing.assert_allclose(out[..., 2], 1.0)
    # Centre pixel (odd size) looks exactly at (yaw, 0); the centre row stays on the
    # equator; the edge columns sit at yaw +- atan((W - 1) / W * tan 45).
    assert out[16, 20, 0] == pytest.approx(yaw, abs=1e-9)
    assert out[16, 20, 1] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(out[16, :, 1], 0.0, atol=1e-9)
    edge = math.degrees(math.atan(40 / 41))
    assert out[16, 0, 0] == pytest.approx(yaw - edge, abs=1e-9)
    assert out[16, -1, 0] == pytest.approx(yaw + edge, abs=1e-9)
    # The vertical field of view follows from square pixels.
    assert view.fov_v_deg == pytest.approx(2 * math.degrees(math.atan(33 / 41)))


def test_viewport_pitch_rotates_the_centre_and_reaches_the_pole() -> None:
    pano = coordinate_panorama(1800, 3600)
    view = Viewport(yaw_deg=20.0, pitch_deg=30.0, fov_deg=60.0, height=21, width=21)
    out = render_viewport(pano, view)
    assert out[10, 10, 0] == pytest.approx(20.0, abs=1e-9)
    assert out[10, 10, 1] == pytest.approx(30.0, abs=1e-9)
    assert out[0, 10, 1] > 30.0 > out[-1, 10, 1]  # up in the view is north
    # Looking straight up: a pixel at distance r from the axis (in tan units) has
    # latitude 90 - atan(r). Compare where the ray is below the top row's centre.
    up = Viewport(yaw_deg=0.0, pitch_deg=90.0, fov_deg=90.0, height=20, width=20)
    polar = render_viewport(pano, up)
    t = (np.arange(20) + 0.5) / 10 - 1
    aa, bb = np.meshgrid(t, -t)
    expected = 90 - np.degrees(np.arctan(np.hypot(aa, bb)))
    top_row_lat = 90 - 0.5 * 180 / 1800
    fine = expected < top_row_lat
    assert fine.mean() > 0.9
    np.testing.assert_allclose(polar[..., 1][fine], expected[fine], atol=1e-9)
    # viewport_lonlat agrees with the rendered coordinate channels.
    lon, lat = viewport_lonlat(view)
    np.testing.assert_allclose(out[..., 1], lat, atol=1e-9)


def test_viewport_wraps_around_the_seam() -> None:
    h, w = 360, 720
    lon, _ = equirect_lonlat(h, w)
    rad = np.radians(lon)
    pano = np.broadcast_to(np.stack([np.cos(rad), np.sin(rad)], -1)[None], (h, w, 2))
    view = Viewport(yaw_deg=180.0, pitch_deg=0.0, fov_deg=90.0, height=16, width=32)
    out = render_viewport(pano, view)
    lon_true, _ = analytic_rays(view)  # 135 .. 225 degrees, across the +-180 seam
    # Bilinear interpolation of cos/sin: error <= (pixel pitch)^2 / 8 ~ 1e-5.
    np.testing.assert_allclose(out[..., 0], np.cos(np.radians(lon_true)), atol=2e-5)
    np.testing.assert_allclose(out[..., 1], np.sin(np.radians(lon_true)), atol=2e-5)


def test_vpsnr_vssim_identity_and_single_view() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)
    views = default_viewports(128)
    assert len(views) == 8 and {v.pitch_deg for v in views} == {0.0, 90.0, -90.0}
    assert vpsnr(x, x) == math.inf
    assert vssim(x, x) == pytest.approx(1.0)
    y = np.clip(x.astype(int) + rng.integers(-20, 21, x.shape), 0, 255).astype(np.uint8)
    one = Viewport(45.0, 10.0, 80.0, 24, 32)
    a, b = render_viewport(x, one), render_viewport(y, one)
    mse = np.mean((a - b) ** 2)
    assert vpsnr(x, y, [one]) == pytest.approx(10 * math.log10(255**2 / mse))
    per = viewport_metrics(x, y)
    assert per["psnr"].shape == (8,) and np.all(per["ssim"] < 1.0)
    assert vpsnr(x, y) == pytest.approx(per["psnr"].mean())
    with pytest.raises(ValueError, match="pitch"):
        Viewport(pitch_deg=95.0)
    with pytest.raises(ValueError, match="field of view"):
        Viewport(fov_deg=180.0)
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        vpsnr(x, y[:, :64])


def test_ws_psnr_weights_latitude() -> None:
    h, w = 90, 180
    weights = ws_weights(h)
    # sum_i cos(lat_i) ~ H * 2 / pi (the sphere's area per unit longitude).
    assert weights.sum() == pytest.approx(h * 2 / math.pi, rel=1e-3)
    rng = np.random.default_rng(2)
    x = rng.integers(20, 236, (h, w, 3)).astype(np.uint8)
    # A latitude-uniform error: WS-PSNR equals PSNR.
    y = (x.astype(int) + rng.choice([-9, 9], size=x.shape)).astype(np.uint8)
    assert ws_psnr(x, y) == pytest.approx(psnr(x, y), abs=1e-9)
    # The same error on polar rows counts less, on equatorial rows more.
    polar, equator = x.copy(), x.copy()
    polar[:10] += 9
    equator[40:50] += 9
    assert ws_psnr(x, polar) > psnr(x, polar) == pytest.approx(psnr(x, equator))
    assert ws_psnr(x, equator) < psnr(x, equator)
    expected = 10 * math.log10(255**2 / (81 * weights[:10].sum() / weights.sum()))
    assert ws_psnr(x, polar) == pytest.approx(expected)
    assert ws_psnr(x, x) == math.inf
