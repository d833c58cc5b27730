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

    def __init__(self, cam: Camera, rng: np.random.Generator) -> None:
        self.cam = cam
        h, w = cam.height, cam.width
        self.image = np.zeros((h, w, 3), np.float32)
        self.labels = np.full((h, w), VOID, np.uint8)
        self.depth = np.full((h, w), SKY_DEPTH * 10, np.float64)
        scale = w / 256.0
        self.tex = {
            "lo": smooth_noise(rng, (h, w), 24 * scale),
            "mid": smooth_noise(rng, (h, w), 5 * scale),
            "hi": np.clip(rng.standard_normal((h, w)).astype(np.float32) * 0.5, -1, 1),
        }
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

    def ground(self, z_max: float) -> tuple[slice, np.ndarray, np.ndarray]:
        """Rows below the horizon: (rows, z [h, 1], X [h, W]) of the ground plane, z <= z_max."""
        below = np.nonzero(self.dy < 0)[0]
        rs = slice(int(below[0]), self.cam.height) if below.size else slice(0, 0)
        z = np.minimum(-self.cam.hc / self.dy[rs], z_max)[:, None]
        return rs, z, z * self.dx[None, :]
