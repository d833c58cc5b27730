"""360-degree image geometry and metrics: equirectangular <-> sphere, rectilinear
viewports, viewport PSNR / SSIM (VPSNR, VSSIM) and WS-PSNR.

Conventions (one place, used by every function here)::

    equirectangular image [H, W, C], 2:1, covering 360 x 180 degrees
      column j  <->  longitude lon = ((j + 0.5) / W) * 360 - 180   degrees, in (-180, 180)
      row i     <->  latitude  lat = 90 - ((i + 0.5) / H) * 180    degrees, in (-90, 90)
      (pixel centres; lon = 0 is the image's centre column, lat = +90 its top edge)

    unit direction of (lon, lat):  (x, y, z) = (cos lat sin lon, sin lat, cos lat cos lon)
      x right, y up, z forward (lon = lat = 0)

    viewport (yaw, pitch, fov, H_v x W_v): a pinhole camera at the sphere's centre looking
    at (lon, lat) = (yaw, pitch), no roll. Pixel (r, c) is the ray through the image plane
    point (a, b, 1), a = (2 (c + 0.5) / W_v - 1) tan(fov_h / 2) (right),
    b = (1 - 2 (r + 0.5) / H_v) tan(fov_v / 2) (up), tan(fov_v / 2) = tan(fov_h / 2) H_v / W_v
    (square pixels), rotated by pitch about x, then by yaw about y. The panorama is sampled
    bilinearly at the ray's (lon, lat), wrapping around in longitude and clamping at the
    poles' rows.

Metrics (x = original, x_hat = reconstruction, both equirectangular):

* VPSNR / VSSIM: the mean over a stated set of viewports of the PSNR (dB) / SSIM between
  the viewports rendered from x and from x_hat (same rays, same sampling). The default
  set :func:`default_viewports` is 8 viewports with a 90 degree field of view: 6 on the
  equator (yaw 0, 60, ..., 300) and one at each pole, each W/4 pixels square (about the
  panorama's own angular resolution at the viewport centre).
* WS-PSNR (Sun, Lu, Yu, IEEE SPL 2017): PSNR with each row weighted by the area it covers
  on the sphere, w_i = cos(lat_i); the weighted MSE is sum_i w_i e_i / sum_i w_i over
  rows, columns and channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semcomm.metrics import gaussian_window, ssim_terms

__all__ = ["Viewport", "default_viewports", "direction_to_lonlat", "equirect_lonlat",
           "lonlat_to_direction", "lonlat_to_pixel", "render_viewport", "ssim",
           "viewport_lonlat", "viewport_metrics", "vpsnr", "vssim", "ws_psnr",
           "ws_weights"]


@dataclass(frozen=True)
class Viewport:
    """A rectilinear view of the sphere.

    Attributes
    ----------
    yaw_deg : float       longitude of the view centre, degrees
    pitch_deg : float     latitude of the view centre, degrees in [-90, 90]
    fov_deg : float       horizontal field of view, degrees in (0, 180)
    height, width : int   viewport size in pixels (the vertical field of view follows
                          from square pixels)
    """

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    fov_deg: float = 90.0
    height: int = 64
    width: int = 64

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.yaw_deg, self.pitch_deg, self.fov_deg)):
            raise ValueError(f"viewport angles must be finite, got {self}")
        if not -90.0 <= self.pitch_deg <= 90.0:
            raise ValueError(f"viewport pitch {self.pitch_deg} deg outside [-90, 90]")
        if not 0.0 < self.fov_deg < 180.0:
            raise ValueError(f"viewport field of view {self.fov_deg} deg outside (0, 180)")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"viewport size {self.height}x{self.width} must be >= 1x1")

    @property
    def fov_v_deg(self) -> float:
        """Vertical field of view (square pixels), degrees."""
        half = math.tan(math.radians(self.fov_deg) / 2.0) * self.height / self.width
        return math.degrees(2.0 * math.atan(half))


def default_viewports(pano_width: int, fov_deg: float = 90.0) -> tuple[Viewport, ...]:
    """The stated VPSNR / VSSIM set: 6 equatorial views (yaw 0, 60, ..., 300 deg) and the
    two poles, ``fov_deg`` wide, ``max(16, round(pano_width * fov_deg / 360))`` pixels
    square."""
    if pano_width < 4:
        raise ValueError(f"panorama width {pano_width} must be >= 4")
    side = max(16, round(pano_width * fov_deg / 360.0))  # >= the 11-px SSIM window
    views = [Viewport(float(yaw), 0.0, fov_deg, side, side) for yaw in range(0, 360, 60)]
    views += [Viewport(0.0, 90.0, fov_deg, side, side), Viewport(0.0, -90.0, fov_deg, side, side)]
    return tuple(views)


# ----------------------------------------------------------------------- geometry


def equirect_lonlat(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre longitude and latitude of an equirectangular image.

    Output
    ------
    lon : [W] float64 degrees in (-180, 180)
    lat : [H] float64 degrees in (-90, 90), top row first
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size {height}x{width} must be >= 1x1")
    lon = (np.arange(width) + 0.5) / width * 360.0 - 180.0
    lat = 90.0 - (np.arange(height) + 0.5) / height * 180.0
    return lon, lat


def lonlat_to_direction(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """(lon, lat) degrees [...] -> unit directions [..., 3] (x right, y up, z forward)."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)], -1)


def direction_to_lonlat(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directions [..., 3] (any length > 0) -> (lon, lat) degrees, lon in [-180, 180]."""
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    lon = np.degrees(np.arctan2(x, z))
    lat = np.degrees(np.arctan2(y, np.hypot(x, z)))
    return lon, lat


def lonlat_to_pixel(lon_deg: np.ndarray, lat_deg: np.ndarray, height: int, width: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) degrees -> continuous (row, col) in pixel-centre coordinates (inverse of
    :func:`equirect_lonlat`; col is not wrapped)."""
    col = (np.asarray(lon_deg) + 180.0) / 360.0 * width - 0.5
    row = (90.0 - np.asarray(lat_deg)) / 180.0 * height - 0.5
    return row, col


def viewport_lonlat(view: Viewport) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude [H_v, W_v] (degrees) of every viewport pixel's ray."""
    tan_h = math.tan(math.radians(view.fov_deg) / 2.0)
    tan_v = tan_h * view.height / view.width
    a = (2.0 * (np.arange(view.width) + 0.5) / view.width - 1.0) * tan_h
    b = (1.0 - 2.0 * (np.arange(view.height) + 0.5) / view.height) * tan_v
    aa, bb = np.meshgrid(a, b)
    x, y, z = aa, bb, np.ones_like(aa)
    p, t = math.radians(view.pitch_deg), math.radians(view.yaw_deg)
    y, z = y * math.cos(p) + z * math.sin(p), -y * math.sin(p) + z * math.cos(p)  # pitch about x
    x, z = x * math.cos(t) + z * math.sin(t), -x * math.sin(t) + z * math.cos(t)  # yaw about y
    return direction_to_lonlat(np.stack([x, y, z], axis=-1))


def render_viewport(pano: np.ndarray, view: Viewport) -> np.ndarray:
    """Rectilinear viewport of an equirectangular panorama, bilinear sampling.

    Input
    -----
    pano : [H, W, C] or [H, W], any real dtype (uint8 images, float test patterns)
    view : Viewport

    Output
    ------
    [H_v, W_v, C] (or [H_v, W_v]) float64; longitude wraps around, rows are clamped at
    the poles.
    """
    p = np.asarray(pano)
    if p.ndim not in (2, 3) or p.shape[0] < 1 or p.shape[1] < 2:
        raise ValueError(f"panorama must be [H, W] or [H, W, C] with W >= 2, got {p.shape}")
    h, w = p.shape[:2]
    lon, lat = viewport_lonlat(view)
    row, col = lonlat_to_pixel(lon, lat, h, w)
    row = np.clip(row, 0.0, h - 1.0)
    r0 = np.minimum(np.floor(row).astype(np.int64), h - 1)
    r1 = np.minimum(r0 + 1, h - 1)
    c0f = np.floor(col)
    fr, fc = row - r0, col - c0f
    c0 = np.mod(c0f.astype(np.int64), w)
    c1 = np.mod(c0 + 1, w)
    data = p.astype(np.float64)
    if data.ndim == 3:
        fr, fc = fr[..., None], fc[..., None]
    top = data[r0, c0] * (1.0 - fc) + data[r0, c1] * fc
    bottom = data[r1, c0] * (1.0 - fc) + data[r1, c1] * fc
    return top * (1.0 - fr) + bottom * fr


# ----------------------------------------------------------------------- metrics


def _check_pano_pair(x: np.ndarray, x_hat: np.ndarray) -> None:
    if x.shape != x_hat.shape or x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"panoramas must both be [H, W, 3], got {x.shape} and {x_hat.shape}")


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def ssim(x: np.ndarray, x_hat: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """Single-scale SSIM (Wang et al. 2004) of [H, W, 3] images on the 0..255 scale,
    Gaussian window, 'valid' borders, averaged over channels (the same terms as
    ``semcomm.metrics.ms_ssim``'s last scale)."""
    if x.shape != x_hat.shape or x.ndim != 3 or min(x.shape[:2]) < window:
        raise ValueError(f"SSIM needs two equal [H, W, C] images with H, W >= {window}, got "
                         f"{x.shape} and {x_hat.shape}")
    val, _ = ssim_terms(x.astype(np.float64), x_hat.astype(np.float64),
                         gaussian_window(window, sigma))
    return float(np.mean(val))


def viewport_metrics(x: np.ndarray, x_hat: np.ndarray,
                     views: Sequence[Viewport] | None = None,
                     peak: float = 255.0) -> dict[str, np.ndarray]:
    """Per-viewport PSNR (dB) and SSIM of two panoramas [H, W, 3] (0..peak).

    Both are rendered with the same rays; the viewports are float (no re-quantization).
    ``views`` None: :func:`default_viewports`. Output: {"psnr": [V], "ssim": [V]}.
    """
    _check_pano_pair(x, x_hat)
    vs = default_viewports(x.shape[1]) if views is None else tuple(views)
    if not vs:
        raise ValueError("viewport metrics need at least one viewport")
    ps, ss = [], []
    for v in vs:
        a, b = render_viewport(x, v), render_viewport(x_hat, v)
        ps.append(_psnr(a, b, peak))
        ss.append(ssim(a * (255.0 / peak), b * (255.0 / peak)))
    return {"psnr": np.array(ps), "ssim": np.array(ss)}


def vpsnr(x: np.ndarray, x_hat: np.ndarray, views: Sequence[Viewport] | None = None,
          peak: float = 255.0) -> float:
    """Viewport PSNR: mean over viewports of each viewport's PSNR, dB (+inf if equal)."""
    return float(np.mean(viewport_metrics(x, x_hat, views, peak)["psnr"]))


def vssim(x: np.ndarray, x_hat: np.ndarray, views: Sequence[Viewport] | None = None) -> float:
    """Viewport SSIM: mean over viewports of each viewport's SSIM."""
    return float(np.mean(viewport_metrics(x, x_hat, views)["ssim"]))


def ws_weights(height: int) -> np.ndarray:
    """WS-PSNR row weights [H] float64: cos(latitude of the row centre)."""
    _, lat = equirect_lonlat(height, 1)
    return np.cos(np.radians(lat))


def ws_psnr(x: np.ndarray, x_hat: np.ndarray, peak: float = 255.0) -> float:
    """WS-PSNR (dB) of two equirectangular images [H, W, C] (or [H, W]); +inf if equal."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (2, 3):
        raise ValueError(f"panoramas must have equal [H, W] or [H, W, C] shapes, got "
                         f"{a.shape} and {b.shape}")
    w = ws_weights(a.shape[0]).reshape((-1,) + (1,) * (a.ndim - 1))
    err = (a - b) ** 2
    wmse = float(np.sum(w * err) / (np.sum(w) * err[0].size))
    return math.inf if wmse == 0.0 else 10.0 * math.log10(peak * peak / wmse)
