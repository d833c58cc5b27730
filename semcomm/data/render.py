"""A tiny z-buffered ray caster for the procedural street scenes.

World frame (metres): X to the right, Y up (ground at Y = 0), z forward along the
street. A pinhole camera sits at (0, hc, 0) looking along +z with focal length ``f``
pixels and principal point (x_v, y_h) (the vanishing point of the street). Pixel
centre (col + 0.5, row + 0.5) sees the ray

    X = z * dx[col],   Y = hc + z * dy[row],   dx = (col + 0.5 - x_v) / f,
                                               dy = (y_h - row - 0.5) / f.

Three primitives cover a street: the ground plane (Y = 0), side planes parallel to
the street (X = const: facades, walls, fences, the sides of vehicles) and frontal
planes (z = const: billboards for people, poles, signs, trees, vehicle backs). Each
primitive returns the pixel window it covers and its local coordinates in metres;
:meth:`Canvas.paint` composites a masked colour and label into the window where the
primitive is nearer than what is already there (z-buffer), so occlusion between
objects is exact and the labels stay pixel-aligned with the image.

The equirectangular panorama (:class:`HalfPanorama`, :class:`PanoCanvas`) keeps these
ray equations per half: in the hemisphere |lon| < 90 deg the ray of pixel (row, col)
still reaches X = z * dx[col] (dx = tan lon), but its height slope depends on both
indices, Y = hc + z * dy[row, col] with dy = tan lat / cos lon. Per pixel, z is a
positive multiple of the distance along the ray, so the z-buffer stays exact.

See-through objects follow Cityscapes' polygon annotation: a fence panel or a bicycle
wheel is labelled as a whole, gaps included, wherever the visible surface lies behind
it. :meth:`Canvas.region` records such a region; :meth:`Canvas.finish` writes its label
over every covered pixel whose z-buffer depth is at or behind the region's plane, after
all drawing (so the result does not depend on drawing order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from semcomm.data.types import VOID

#: Depth given to the sky (nothing is farther).
SKY_DEPTH = 1e9


@dataclass(frozen=True)
class Camera:
    """Pinhole camera; see the module docstring for the ray equations.

    Attributes
    ----------
    height, width : int
        Image size in pixels.
    f : float
        Focal length in pixels.
    x_v, y_h : float
        Principal point (vanishing point of the street) in pixels.
    hc : float
        Camera height above the ground in metres.
    """

    height: int
    width: int
    f: float
    x_v: float
    y_h: float
    hc: float

    @property
    def dx(self) -> np.ndarray:
        """[W] float64 horizontal ray slope per column."""
        return (np.arange(self.width) + 0.5 - self.x_v) / self.f

    @property
    def dy(self) -> np.ndarray:
        """[H] float64 vertical ray slope per row (positive above the horizon)."""
        return (self.y_h - np.arange(self.height) - 0.5) / self.f


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Value noise in about [-1, 1]: a random grid of spacing ``cell`` px, bilinearly upsampled.

    Output: [H, W] float32.
    """
    h, w = shape
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    up = ndimage.zoom(grid, (h / (gh - 1), w / (gw - 1)), order=1, prefilter=False)
    return np.clip(up[:h, :w] * 0.6, -1.0, 1.0)


def texture_fields(
    rng: np.random.Generator, shape: tuple[int, int], scale: float
) -> dict[str, np.ndarray]:
    """Shared noise fields ``lo``, ``mid`` (cells of 24 and 5 px times ``scale``), ``hi``.

    Output: dict of [H, W] float32 in [-1, 1].
    """
    return {
        "lo": smooth_noise(rng, shape, 24 * scale),
        "mid": smooth_noise(rng, shape, 5 * scale),
        "hi": np.clip(rng.standard_normal(shape).astype(np.float32) * 0.5, -1, 1),
    }


class Canvas:
    """Image, label map and z-buffer being rendered.

    Attributes
    ----------
    image : [H, W, 3] float32 in [0, 1] (before the final tone mapping)
    labels : [H, W] uint8 trainIds
    depth : [H, W] float64 metres along z
    tex : dict[str, [H, W] float32]
        Shared noise fields (``lo``, ``mid``, ``hi`` spatial frequency) used as texture.
    """

    def __init__(
        self,
        cam: Camera | HalfPanorama,
        rng: np.random.Generator | None = None,
        *,
        tex: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Draw the texture fields from ``rng``, or take ``tex`` ([H, W] each) as given."""
        self.cam = cam
        h, w = cam.height, cam.width
        self.image = np.zeros((h, w, 3), np.float32)
        self.labels = np.full((h, w), VOID, np.uint8)
        self.depth = np.full((h, w), SKY_DEPTH * 10, np.float64)
        if tex is None:
            if rng is None:
                raise ValueError("Canvas needs a generator for its textures or tex fields")
            tex = texture_fields(rng, (h, w), w / 256.0)
        if any(t.shape != (h, w) for t in tex.values()):
            raise ValueError(f"texture fields must be {h}x{w}")
        self.tex = tex
        self.dx = cam.dx
        self.dy = cam.dy
        self._regions: list[tuple[slice, slice, np.ndarray, np.ndarray, int]] = []

    def paint(
        self,
        rows: slice,
        cols: slice,
        mask: np.ndarray,
        depth: np.ndarray | float,
        label: int | np.ndarray,
        colour: np.ndarray,
    ) -> None:
        """Composite where ``mask`` holds and ``depth`` is nearer than the z-buffer.

        mask : [h, w] bool; depth : scalar or broadcastable to [h, w] (metres);
        label : int or [h, w] uint8; colour : broadcastable to [h, w, 3] float in [0, 1].
        """
        zwin = self.depth[rows, cols]
        d = np.broadcast_to(np.asarray(depth, np.float64), zwin.shape)
        m = mask & (d < zwin)
        if not m.any():
            return
        zwin[m] = d[m]
        lab = self.labels[rows, cols]
        if np.ndim(label) == 0:
            lab[m] = label
        else:
            lab[m] = np.broadcast_to(label, m.shape)[m]
        img = self.image[rows, cols]
        img[m] = np.broadcast_to(colour, m.shape + (3,))[m]

    def region(
        self, rows: slice, cols: slice, mask: np.ndarray, depth: np.ndarray | float, label: int
    ) -> None:
        """Record an annotation region (label only; see the module docstring).

        mask : [h, w] bool; depth : scalar or broadcastable to [h, w] (metres).
        """
        d = np.broadcast_to(np.asarray(depth, np.float64), mask.shape).copy()
        self._regions.append((rows, cols, mask.copy(), d, int(label)))

    def finish(self) -> None:
        """Apply the recorded regions, farthest first, so nearer regions win overlaps."""
        order = sorted(self._regions, key=lambda r: -float(np.min(r[3], initial=np.inf)))
        for rows, cols, mask, d, label in order:
            m = mask & (self.depth[rows, cols] >= d - 1e-9)
            self.labels[rows, cols][m] = label
        self._regions.clear()

    def textured(
        self, rows: slice, cols: slice, rgb: np.ndarray, lo: float, mid: float, hi: float
    ) -> np.ndarray:
        """[h, w, 3] colour = rgb * (1 + lo * noise_lo + mid * noise_mid + hi * noise_hi)."""
        t = self.tex
        g = 1.0 + lo * t["lo"][rows, cols] + mid * t["mid"][rows, cols] + hi * t["hi"][rows, cols]
        return np.asarray(rgb, np.float32)[None, None, :] * g[..., None]

    # -- primitives ------------------------------------------------------------------

    def frontal(
        self, z: float, x0: float, x1: float, y0: float, y1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Window of the frontal rectangle [x0, x1] x [y0, y1] (metres) at depth ``z``.

        Returns (rows, cols, X [1, w], Y [h, 1]) with world X and Y of each pixel on the
        plane, or None when the rectangle is off-screen or smaller than a pixel row/col.
        """
        if z <= 0.5:
            return None
        xs = z * self.dx
        ys = self.cam.hc + z * self.dy  # decreasing with row
        c0, c1 = np.searchsorted(xs, [x0, x1])
        r0 = int(np.searchsorted(-ys, -y1))
        r1 = int(np.searchsorted(-ys, -y0))
        if c1 <= c0 or r1 <= r0:
            return None
        return slice(r0, r1), slice(int(c0), int(c1)), xs[None, c0:c1], ys[r0:r1, None]

    def side(
        self, xp: float, z0: float, z1: float, y1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Window of the side plane X = ``xp`` for z in [z0, z1] and Y in [0, y1].

        Returns (rows, cols, z [1, w], Y [h, w]): the depth of each column and the world
        height of each pixel on the plane, or None when not visible (the camera sees
        only planes with xp != 0, on the side where the ray slope has xp's sign).
        """
        if abs(xp) < 1e-3 or z1 <= max(z0, 0.5):
            return None
        z0 = max(z0, 0.5)
        with np.errstate(divide="ignore"):
            zc = np.where(self.dx * xp > 0, xp / np.where(self.dx == 0, 1e-9, self.dx), np.inf)
        cols = np.nonzero((zc >= z0) & (zc <= z1))[0]
        if cols.size == 0:
            return None
        cs = slice(int(cols[0]), int(cols[-1]) + 1)
        zcol = zc[cs][None, :]
        # Rows spanned: the top edge is highest at the nearest column when y1 > hc and at
        # the farthest column otherwise; the ground line is lowest at the nearest column.
        ys_near = self.cam.hc + float(zcol.min()) * self.dy
        ys_far = self.cam.hc + float(zcol.max()) * self.dy
        r0 = min(int(np.searchsorted(-ys_near, -y1)), int(np.searchsorted(-ys_far, -y1)))
        r1 = int(np.searchsorted(-ys_near, 0.0))
        if r1 <= r0:
            return None
        rs = slice(r0, r1)
        yy = self.cam.hc + zcol * self.dy[rs, None]
        return rs, cs, zcol, yy

    def top(
        self, yp: float, x0: float, x1: float, z0: float, z1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Window of the horizontal rectangle Y = ``yp`` over [x0, x1] x [z0, z1] (a roof).

        Returns (rows, cols, X [h, w], z [h, w]) and a mask is the caller's job; None when
        not visible. The pinhole camera sits at about roof height and its scenes were
        always drawn without roofs, so here it returns None (images stay as they were);
        :class:`PanoCanvas` draws them.
        """
        return None

    def ground(self, z_max: float) -> tuple[slice, np.ndarray, np.ndarray]:
        """Rows below the horizon: (rows, z [h, 1], X [h, W]) of the ground plane, z <= z_max."""
        below = np.nonzero(self.dy < 0)[0]
        rs = slice(int(below[0]), self.cam.height) if below.size else slice(0, 0)
        z = np.minimum(-self.cam.hc / self.dy[rs], z_max)[:, None]
        return rs, z, z * self.dx[None, :]


# -- equirectangular panorama --------------------------------------------------------


@dataclass(frozen=True)
class HalfPanorama:
    """The hemisphere |lon| < 90 deg of a [height, 2 * width] equirectangular panorama.

    Pixel centres follow :mod:`semcomm.spherical`: column j of the full panorama (width
    W = 2 * width) has lon = ((j + 0.5) / W) 360 - 180 deg, row i has
    lat = 90 - ((i + 0.5) / height) 180 deg, and (lon, lat) is the direction
    (cos lat sin lon, sin lat, cos lat cos lon). Column c of this half is panorama column
    c + W / 4. The camera sits at (0, hc, 0); its horizon is the line between rows
    height / 2 - 1 and height / 2.

    Attributes
    ----------
    height : int   rows (the panorama's)
    width : int    columns of this half (half the panorama's, so the panorama's is a
                   multiple of 4)
    hc : float     camera height above the ground, metres
    """

    height: int
    width: int
    hc: float

    @property
    def y_h(self) -> float:
        """Row coordinate of the horizon (for the sky's gradient)."""
        return self.height / 2

    @property
    def lon(self) -> np.ndarray:
        """[width] float64 pixel-centre longitude in radians, in (-pi/2, pi/2)."""
        return ((np.arange(self.width) + self.width / 2 + 0.5) / (2 * self.width) - 0.5) * (
            2 * np.pi
        )

    @property
    def lat(self) -> np.ndarray:
        """[height] float64 pixel-centre latitude in radians, top row first."""
        return (0.5 - (np.arange(self.height) + 0.5) / self.height) * np.pi

    @property
    def dx(self) -> np.ndarray:
        """[width] float64 X per unit z along each column's rays: tan lon (increasing)."""
        return np.tan(self.lon)

    @property
    def dy(self) -> np.ndarray:
        """[height, width] float64 height gain per unit z: tan lat / cos lon."""
        return np.tan(self.lat)[:, None] / np.cos(self.lon)[None, :]


def _row_span(inside: np.ndarray) -> slice:
    """The smallest slice of rows holding every True of ``inside`` [h, w] bool."""
    rows = np.nonzero(inside.any(axis=1))[0]
    return slice(int(rows[0]), int(rows[-1]) + 1) if rows.size else slice(0, 0)


class PanoCanvas(Canvas):
    """A :class:`Canvas` for one :class:`HalfPanorama`: the same primitives with per-pixel
    height slopes (see the module docstring), so the scene code draws both cameras.

    Differences from the pinhole primitives: frontal and side windows are bounding boxes
    of curved outlines, so Y [h, w] of a window may leave [y0, y1] and callers mask by it;
    side planes start at z = 0 when asked for z0 <= 0.5 (the pinhole near clip), so the
    walls of the two halves meet beside the camera; roofs (:meth:`top`) are drawn.
    """

    cam: HalfPanorama

    def __init__(self, cam: HalfPanorama, tex: dict[str, np.ndarray]) -> None:
        super().__init__(cam, tex=tex)

    def frontal(
        self, z: float, x0: float, x1: float, y0: float, y1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Returns (rows, cols, X [1, w], Y [h, w]) or None (see :meth:`Canvas.frontal`)."""
        if z <= 0.5:
            return None
        xs = z * self.dx
        c0, c1 = (int(c) for c in np.searchsorted(xs, [x0, x1]))
        if c1 <= c0:
            return None
        ys = self.cam.hc + z * self.dy[:, c0:c1]
        rs = _row_span((ys > y0) & (ys <= y1))
        if rs.stop <= rs.start:
            return None
        return rs, slice(c0, c1), xs[None, c0:c1], ys[rs]

    def side(
        self, xp: float, z0: float, z1: float, y1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Returns (rows, cols, z [1, w], Y [h, w]) or None (see :meth:`Canvas.side`)."""
        z0 = 0.0 if z0 <= 0.5 else z0
        if abs(xp) < 1e-3 or z1 <= z0:
            return None
        with np.errstate(divide="ignore"):
            zc = np.where(self.dx * xp > 0, xp / np.where(self.dx == 0, 1e-9, self.dx), np.inf)
        cols = np.nonzero((zc >= z0) & (zc <= z1))[0]
        if cols.size == 0:
            return None
        cs = slice(int(cols[0]), int(cols[-1]) + 1)
        zcol = zc[None, cs]
        yy = self.cam.hc + zcol * self.dy[:, cs]
        rs = _row_span((yy > 0) & (yy <= y1))
        if rs.stop <= rs.start:
            return None
        return rs, cs, zcol, yy[rs]

    def top(
        self, yp: float, x0: float, x1: float, z0: float, z1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Returns (rows, cols, X [h, w], z [h, w]) of the plane Y = yp, or None.

        Only a plane below the camera (yp < hc) is seen from above, through the rows
        below the horizon.
        """
        dh = yp - self.cam.hc
        if dh >= 0 or z0 <= 0.0 or z1 <= z0 or x1 <= x0:
            return None
        ratios = [x / z for x in (x0, x1) for z in (z0, z1)]  # X / z at the corners
        c0 = int(np.searchsorted(self.dx, min(ratios)))
        c1 = int(np.searchsorted(self.dx, max(ratios), side="right"))
        if c1 <= c0:
            return None
        rs = self._below()
        zz = dh / self.dy[rs, c0:c1]
        xx = zz * self.dx[None, c0:c1]
        sub = _row_span((xx >= x0) & (xx <= x1) & (zz >= z0) & (zz <= z1))
        if sub.stop <= sub.start:
            return None
        rows = slice(rs.start + sub.start, rs.start + sub.stop)
        return rows, slice(c0, c1), xx[sub], zz[sub]

    def _below(self) -> slice:
        """The rows below the horizon (dy < 0; sign of tan lat, the same in every column)."""
        below = np.nonzero(np.tan(self.cam.lat) < 0)[0]
        return slice(int(below[0]), self.cam.height) if below.size else slice(0, 0)

    def ground(self, z_max: float) -> tuple[slice, np.ndarray, np.ndarray]:
        """Rows below the horizon: (rows, z [h, w], X [h, w]) of the ground plane, at most
        ``z_max`` metres away horizontally (the pinhole caps z; here the cap is round)."""
        rs = self._below()
        z = np.minimum(-self.cam.hc / self.dy[rs], z_max * np.cos(self.cam.lon)[None, :])
        return rs, z, z * self.dx[None, :]
