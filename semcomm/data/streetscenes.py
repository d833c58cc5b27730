"""StreetScenes: procedurally generated Cityscapes-like street scenes with exact labels.

Each image is rendered by the z-buffered ray caster of :mod:`semcomm.data.render`
from a random street, so every pixel's label is the trainId of the surface it shows::

    seed, split, index ─► SeedSequence ─► rng ─► street layout (road, lanes, sidewalks,
        verges, near layer of walls/fences/hedges, building facades with window grids,
        distant skyline, sky with clouds)
      ─► objects at world positions (parked and moving cars, trucks, buses, trams,
        persons, riders on bicycles and motorcycles, poles with signs, traffic lights
        and street lamps, trees)
      ─► z-buffer composite ─► lighting, colour cast, sensor noise ─► Sample

Class colours are drawn per image from wide, overlapping ranges (greys for road,
sidewalk, building, wall and sky; any hue for vehicles and clothes), so a per-pixel
colour classifier is poor (``scripts/class_shares.py --trivial`` measures it); the
classes are told apart by geometry, texture and context, as in real street scenes.

``projection="equirectangular"`` renders the same kind of street as a 360 x 180 degree
panorama from a camera standing on the road (:func:`render_panorama`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from semcomm.data.base import ImageDataset
from semcomm.data.render import (
    SKY_DEPTH,
    Camera,
    Canvas,
    HalfPanorama,
    PanoCanvas,
    texture_fields,
)
from semcomm.data.types import NUM_CLASSES, VOID, Sample

# Cityscapes trainIds (cityscapesScripts labels.py).
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY = range(11)
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = range(11, 19)

#: Names of the 19 trainIds, in order.
CLASS_NAMES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
    "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip

#: Split name -> stream id mixed into the SeedSequence (disjoint image streams).
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

Window = tuple[slice, slice, np.ndarray, np.ndarray]


# -- colours ---------------------------------------------------------------------------


def _grey(rng: np.random.Generator, lo: float, hi: float, tint: float = 0.06) -> np.ndarray:
    g = rng.uniform(lo, hi)
    return np.clip(g * (1 + rng.uniform(-tint, tint, 3)), 0, 1).astype(np.float32)


def _hue(
    rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]
) -> np.ndarray:
    """Random colour from hue/saturation/value ranges."""
    h = rng.uniform(0, 6)
    s, v = rng.uniform(*sat), rng.uniform(*val)
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
    return (np.array(rgb) + (v - c)).astype(np.float32)


def _any_colour(rng: np.random.Generator) -> np.ndarray:
    """Vehicle / clothing colour: half of them greys (black..white), half saturated hues."""
    if rng.random() < 0.5:
        return _grey(rng, 0.05, 0.9)
    return _hue(rng, (0.3, 0.9), (0.2, 0.9))


def _green(rng: np.random.Generator) -> np.ndarray:
    """Vegetation / grass colours, sometimes autumn-yellow or brownish."""
    if rng.random() < 0.8:
        base = np.array([rng.uniform(0.15, 0.45), rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.3)])
    else:
        base = np.array([rng.uniform(0.4, 0.6), rng.uniform(0.35, 0.55), rng.uniform(0.1, 0.3)])
    return (base * rng.uniform(0.6, 1.2)).astype(np.float32)


# -- street layout ---------------------------------------------------------------------


@dataclass(frozen=True)
class Street:
    """Cross-section of the street in metres (X of each boundary, left side negative).

    road: |X - xr| < half; sidewalks out to ``walk``; verge (terrain or pavement) out
    to ``near`` (walls/fences/hedges) and on to ``facade`` (building fronts).
    """

    xr: float
    half: float
    lanes: int
    walk: tuple[float, float]
    near: tuple[float, float]
    facade: tuple[float, float]
    verge_terrain: tuple[bool, bool]


def _street(rng: np.random.Generator) -> Street:
    lanes = int(rng.integers(2, 5))
    half = lanes * rng.uniform(1.6, 1.9)
    xr = rng.uniform(-0.6, 0.6) * half
    walk, near, facade = [], [], []
    for sgn in (-1.0, 1.0):
        w = xr + sgn * (half + rng.uniform(1.8, 4.0))
        n = w + sgn * (rng.uniform(0.0, 3.0) if rng.random() < 0.6 else 0.0)
        walk.append(w)
        near.append(n)
        facade.append(n + sgn * rng.uniform(0.3, 6.0))
    verge = (bool(rng.random() < 0.6), bool(rng.random() < 0.6))
    return Street(
        xr, half, lanes, (walk[0], walk[1]), (near[0], near[1]), (facade[0], facade[1]), verge
    )


def _camera(rng: np.random.Generator, height: int, width: int) -> Camera:
    return Camera(
        height=height,
        width=width,
        f=width * rng.uniform(0.5, 0.7),
        x_v=width * rng.uniform(0.4, 0.6),
        y_h=height * rng.uniform(0.36, 0.48),
        hc=rng.uniform(1.3, 1.8),
    )


# -- background: sky, skyline, facades ------------------------------------------------


def _sky(cv: Canvas, rng: np.random.Generator) -> None:
    h, w = cv.cam.height, cv.cam.width
    overcast = rng.random() < 0.35
    top = (
        _grey(rng, 0.55, 0.85)
        if overcast
        else np.array(
            [rng.uniform(0.2, 0.5), rng.uniform(0.4, 0.65), rng.uniform(0.7, 1.0)], np.float32
        )
    )
    bottom = np.clip(top + rng.uniform(0.1, 0.3), 0, 1)
    t = np.clip(np.arange(h) / max(cv.cam.y_h, 1.0), 0, 1)[:, None, None]
    col = top[None, None] * (1 - t) + bottom[None, None] * t
    cloud = np.clip((cv.tex["lo"] - rng.uniform(-0.2, 0.4)) * 2.5, 0, 1)[..., None]
    col = col * (1 - 0.8 * cloud) + rng.uniform(0.75, 0.95) * 0.8 * cloud
    cv.paint(slice(0, h), slice(0, w), np.ones((h, w), bool), SKY_DEPTH, SKY, col)


def _segments(rng: np.random.Generator, z_end: float, lo: float, hi: float) -> np.ndarray:
    """Boundaries 0 = b0 < b1 < ... >= z_end of random lengths in [lo, hi] metres."""
    n = int(z_end / lo) + 2
    return np.concatenate([[0.0], np.cumsum(rng.uniform(lo, hi, n))])


def _skyline(cv: Canvas, rng: np.random.Generator) -> None:
    """Distant buildings and trees at the end of the street (frontal, z ~ 250 m)."""
    z = rng.uniform(200, 300)
    win = cv.frontal(z, -400, 400, 0.0, 80.0)
    if win is None:
        return
    rs, cs, xx, yy = win
    k = 64
    bounds = np.cumsum(rng.uniform(6, 30, k)) - 400
    seg = np.minimum(np.searchsorted(bounds, xx[0]), k - 1)
    heights = rng.uniform(6, 45, k)
    is_veg = rng.random(k) < 0.25
    top = heights[seg][None, :] + is_veg[seg][None, :] * 3 * cv.tex["mid"][rs, cs]
    mask = yy <= top
    labels = np.where(is_veg[seg], VEG, BUILDING).astype(np.uint8)[None, :]
    cols = np.stack([_grey(rng, 0.3, 0.8) for _ in range(k)])
    for i in np.nonzero(is_veg)[0]:
        cols[i] = _green(rng) * 0.8
    colour = cols[seg][None, :, :] * (1 + 0.1 * cv.tex["hi"][rs, cs][..., None])
    cv.paint(rs, cs, mask, z, np.broadcast_to(labels, mask.shape), colour)


def _facade_segments(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-segment attributes of one side's facades (building / vegetation / gap)."""
    kind = rng.choice(3, size=n, p=[0.75, 0.13, 0.12])  # 0 building, 1 trees, 2 gap
    height = np.where(kind == 0, rng.uniform(6, 30, n), rng.uniform(3, 12, n))
    base = np.stack(
        [
            _grey(rng, 0.25, 0.85, 0.15)
            if rng.random() < 0.6
            else _hue(rng, (0.1, 0.45), (0.3, 0.8))
            for _ in range(n)
        ]
    )
    for i in np.nonzero(kind == 1)[0]:
        base[i] = _green(rng)
    glass = np.stack([_grey(rng, 0.05, 0.6, 0.2) for _ in range(n)])
    return {
        "kind": kind, "height": height, "base": base, "glass": glass,
        "floor": rng.uniform(2.8, 3.6, n), "bay": rng.uniform(1.6, 3.4, n),
        "wfrac": rng.uniform(0.35, 0.7, n), "hfrac": rng.uniform(0.35, 0.65, n),
        "shop": rng.random(n) < 0.5,
    }  # fmt: skip


def _facades(cv: Canvas, rng: np.random.Generator, xp: float) -> None:
    """Building fronts (window grids, shop floors) and tree rows on the plane X = xp."""
    bounds = _segments(rng, 200.0, 6.0, 25.0)
    win = cv.side(xp, 0.5, 200.0, 45.0)
    if win is None:
        return
    rs, cs, zc, yy = win
    a = _facade_segments(rng, len(bounds))
    seg = np.clip(np.searchsorted(bounds, zc[0]) - 1, 0, len(bounds) - 1)
    kind = a["kind"][seg][None, :]
    noise = cv.tex["mid"][rs, cs]
    top = a["height"][seg][None, :] + (kind == 1) * 1.5 * noise
    mask = (kind != 2) & (yy >= 0) & (yy <= top)
    s = zc - bounds[seg][None, :]
    u = (s % a["bay"][seg][None, :]) / a["bay"][seg][None, :]
    v = (yy % a["floor"][seg][None, :]) / a["floor"][seg][None, :]
    window = (u < a["wfrac"][seg][None, :]) & (v > 0.3) & (v < 0.3 + a["hfrac"][seg][None, :])
    shop = a["shop"][seg][None, :] & (yy > 0.4) & (yy < 3.0) & (u < 0.85)
    window = (kind == 0) & (yy < top - 0.8) & np.where(yy < 3.4, shop, window & (yy > 3.4))
    colour = np.where(window[..., None], a["glass"][seg][None], a["base"][seg][None])
    shade = rng.uniform(0.6, 1.1)
    tex = 1 + 0.08 * cv.tex["lo"][rs, cs] + 0.05 * cv.tex["hi"][rs, cs]
    tex = tex + (kind == 1) * (0.25 * noise + 0.2 * cv.tex["hi"][rs, cs])
    labels = np.where(kind == 1, VEG, BUILDING).astype(np.uint8)
    cv.paint(
        rs, cs, mask, zc, np.broadcast_to(labels, mask.shape), colour * (shade * tex)[..., None]
    )


def _near_layer(cv: Canvas, rng: np.random.Generator, xp: float) -> None:
    """Walls, fences and hedges along the verge (side plane X = xp), with gaps."""
    bounds = _segments(rng, 120.0, 4.0, 20.0)
    n = len(bounds)
    win = cv.side(xp, 0.5, 120.0, 3.0)
    if win is None:
        return
    rs, cs, zc, yy = win
    kind = rng.choice(4, size=n, p=[0.4, 0.22, 0.22, 0.16])  # gap, wall, fence, hedge
    height = np.select(
        [kind == 1, kind == 2],
        [rng.uniform(0.8, 2.6, n), rng.uniform(1.0, 2.0, n)],
        rng.uniform(0.8, 1.8, n),
    )
    seg = np.clip(np.searchsorted(bounds, zc[0]) - 1, 0, n - 1)
    k = kind[seg][None, :]
    s = zc - bounds[seg][None, :]
    top = height[seg][None, :]
    spacing, bar = rng.uniform(0.12, 0.4), rng.uniform(0.3, 0.6)
    bars = (
        ((s % spacing) / spacing < bar)
        | (np.abs(yy - top + 0.05) < 0.07)
        | (np.abs(yy - 0.25) < 0.05)
    )
    panel = (k != 0) & (yy >= 0) & (yy <= top)
    mask = panel & ((k != 2) | bars)
    cols = np.stack([_grey(rng, 0.3, 0.85, 0.2), _grey(rng, 0.15, 0.7, 0.3), _green(rng)])
    colour = (
        cols[np.clip(k - 1, 0, 2)]
        * (1 + 0.1 * cv.tex["lo"][rs, cs] + np.where(k == 3, 0.35, 0.06) * cv.tex["hi"][rs, cs])[
            ..., None
        ]
    )
    labels = np.choose(np.clip(k, 0, 3), [VOID, WALL, FENCE, VEG]).astype(np.uint8)
    cv.paint(rs, cs, mask, zc, np.broadcast_to(labels, mask.shape), colour)
    cv.region(rs, cs, panel & (k == 2), zc, FENCE)  # the whole panel, gaps included


# -- ground ----------------------------------------------------------------------------


def _ground(cv: Canvas, rng: np.random.Generator, st: Street, shadows: list[tuple]) -> None:
    """Road (asphalt, lane markings, crossings), sidewalks with kerbs, verges."""
    rs, z, xx = cv.ground(400.0)
    if rs.stop <= rs.start:
        return
    cs = slice(0, cv.cam.width)
    rel = xx - st.xr
    road = np.abs(rel) < st.half
    walk = (xx > st.walk[0]) & (xx < st.walk[1]) & ~road
    verge_l = (xx <= st.walk[0]) & st.verge_terrain[0]
    verge_r = (xx >= st.walk[1]) & st.verge_terrain[1]
    labels = np.full(xx.shape, SIDEWALK, np.uint8)
    labels[road] = ROAD
    labels[verge_l | verge_r] = TERRAIN
    asphalt, paving, grass = _grey(rng, 0.2, 0.5), _grey(rng, 0.35, 0.75, 0.1), _green(rng) * 0.9
    if rng.random() < 0.3:
        paving = _hue(rng, (0.15, 0.4), (0.4, 0.7))
    colour = np.empty(xx.shape + (3,), np.float32)
    colour[:] = paving
    colour[road] = asphalt
    colour[labels == TERRAIN] = grass
    g = 1 + 0.12 * cv.tex["lo"][rs, cs] + 0.06 * cv.tex["hi"][rs, cs]
    g = g + (labels == TERRAIN) * (0.25 * cv.tex["mid"][rs, cs] + 0.15 * cv.tex["hi"][rs, cs])
    tile = rng.uniform(0.3, 0.8)
    grout = ((xx % tile) < 0.04) | ((z % tile) < 0.04 * np.maximum(1, z / 10))
    g = g - walk * grout * 0.15
    kerb = ~road & (np.abs(np.abs(rel) - st.half) < 0.2)
    g = g + kerb * 0.25
    colour = colour * g[..., None]
    colour = _markings(rng, st, rel, z, road, colour, cv.tex["hi"][rs, cs])
    for x0, x1, z0, z1 in shadows:
        under = (xx > x0) & (xx < x1) & (z > z0) & (z < z1)
        colour[under] *= 0.45
    cv.paint(rs, cs, np.ones(xx.shape, bool), np.broadcast_to(z, xx.shape), labels, colour)


def _markings(
    rng: np.random.Generator,
    st: Street,
    rel: np.ndarray,
    z: np.ndarray,
    road: np.ndarray,
    colour: np.ndarray,
    grain: np.ndarray,
) -> np.ndarray:
    """Dashed lane lines, solid edge lines and sometimes a zebra crossing (all road)."""
    paint = np.array([0.9, 0.9, 0.85], np.float32) * rng.uniform(0.7, 1.0)
    lane_w = 2 * st.half / st.lanes
    width = rng.uniform(0.1, 0.2)
    dash, phase = rng.uniform(2, 6), rng.uniform(0, 10)
    mark = np.zeros(rel.shape, bool)
    for k in range(1, st.lanes):
        mark |= (np.abs(rel + st.half - k * lane_w) < width) & (((z + phase) % (2 * dash)) < dash)
    mark |= np.abs(np.abs(rel) - (st.half - 0.3)) < width / 2
    if rng.random() < 0.3:
        zc = rng.uniform(8, 30)
        mark |= (z > zc) & (z < zc + 4) & ((rel % 1.0) < 0.5)
    mark &= road
    out = colour.copy()
    out[mark] = paint * (1 + 0.1 * grain[mark][:, None])
    return out


# -- objects ---------------------------------------------------------------------------


def _capsule(
    xx: np.ndarray, yy: np.ndarray, p: tuple[float, float], q: tuple[float, float], r: float
) -> np.ndarray:
    """Pixels within distance r of the segment p-q (metres, in the billboard plane)."""
    px, py, qx, qy = p[0], p[1], q[0], q[1]
    vx, vy = qx - px, qy - py
    t = np.clip(((xx - px) * vx + (yy - py) * vy) / max(vx * vx + vy * vy, 1e-9), 0, 1)
    return (xx - px - t * vx) ** 2 + (yy - py - t * vy) ** 2 < r * r


def _person(
    cv: Canvas,
    rng: np.random.Generator,
    x: float,
    z: float,
    label: int = PERSON,
    hgt: float | None = None,
    base_y: float = 0.0,
) -> None:
    """A walking person (billboard): head, torso, arms and legs in random clothes."""
    h = hgt if hgt is not None else rng.uniform(1.5, 1.95)
    win = cv.frontal(z, x - 0.4 * h, x + 0.4 * h, base_y, base_y + h)
    if win is None:
        return
    rs, cs, xx, yy = win
    u, v = xx - x, (yy - base_y) / h
    stride = rng.uniform(0, 0.12) * h
    legs = _capsule(u, v * h, (-0.05 * h, 0.5 * h), (-0.05 * h - stride, 0.03 * h), 0.05 * h)
    legs |= _capsule(u, v * h, (0.05 * h, 0.5 * h), (0.05 * h + stride, 0.03 * h), 0.05 * h)
    torso = (np.abs(u) < 0.14 * h * (1.1 - 0.3 * (v - 0.5))) & (v > 0.47) & (v < 0.83)
    arms = _capsule(np.abs(u), v * h, (0.16 * h, 0.8 * h), (0.19 * h, 0.48 * h), 0.035 * h)
    head = (u / (0.07 * h)) ** 2 + ((v - 0.915) / 0.075) ** 2 < 1
    skin = np.array([rng.uniform(0.35, 0.9), 0, 0], np.float32)
    skin[1:] = skin[0] * np.array([rng.uniform(0.65, 0.8), rng.uniform(0.5, 0.65)])
    shirt, trousers = _any_colour(rng), _any_colour(rng) * 0.7
    colour = np.where((torso | arms)[..., None], shirt, trousers)
    colour = np.where(head[..., None], skin, colour) * (1 + 0.08 * cv.tex["hi"][rs, cs])[..., None]
    cv.paint(rs, cs, legs | torso | arms | head, z, label, colour)


def _triangle(
    u: np.ndarray,
    v: np.ndarray,
    a: tuple[float, float],
    b: tuple[float, float],
    c: tuple[float, float],
) -> np.ndarray:
    """Mask of the points (u, v) inside triangle abc (either orientation)."""

    def edge(p: tuple[float, float], q: tuple[float, float]) -> np.ndarray:
        return (q[0] - p[0]) * (v - p[1]) - (q[1] - p[1]) * (u - p[0])

    e1, e2, e3 = edge(a, b), edge(b, c), edge(c, a)
    return ((e1 >= 0) & (e2 >= 0) & (e3 >= 0)) | ((e1 <= 0) & (e2 <= 0) & (e3 <= 0))


def _two_wheeler(cv: Canvas, rng: np.random.Generator, x: float, z: float, motor: bool) -> None:
    """A bicycle or motorcycle seen from the side, with its rider (billboard at depth z)."""
    s = 1.0 if rng.random() < 0.5 else -1.0  # facing right or left
    r = 0.33 if motor else 0.35
    hub = 0.6 if motor else 0.52
    win = cv.frontal(z, x - 1.0, x + 1.0, 0.0, 1.2)
    if win is not None:
        rs, cs, xx, yy = win
        u, v = (xx - x) * s, yy
        d1 = np.hypot(u + hub, v - r)
        d2 = np.hypot(u - hub, v - r)
        ring = 0.1 if motor else 0.055
        wheels = (np.abs(d1 - r + ring) < ring) | (np.abs(d2 - r + ring) < ring)
        wheels |= (d1 < 0.06) | (d2 < 0.06)
        frame = _capsule(u, v, (-hub, r), (0.0, 0.3), 0.035) | _capsule(
            u, v, (0.0, 0.3), (-0.1, 0.9), 0.035
        )
        frame |= _capsule(u, v, (-0.1, 0.85), (0.45, 0.9), 0.035) | _capsule(
            u, v, (0.0, 0.3), (0.45, 0.9), 0.035
        )
        frame |= _capsule(u, v, (hub, r), (0.42, 1.05), 0.035)
        if motor:
            frame |= ((u / 0.55) ** 2 + ((v - 0.72) / 0.25) ** 2 < 1) | _capsule(
                u, v, (-0.5, 0.75), (0.3, 0.8), 0.14
            )
        body = _any_colour(rng)
        colour = np.where(wheels[..., None], np.float32(0.08), body)
        label = MOTORCYCLE if motor else BICYCLE
        cv.paint(rs, cs, wheels | frame, z + 0.05, label, colour)
        # Annotated as a polygon: wheel discs and the frame's triangle, spokes' gaps included.
        discs = (d1 < r) | (d2 < r)
        tri = _triangle(u, v, (0.0, 0.3), (-0.1, 0.88), (0.45, 0.9))
        tri |= _triangle(u, v, (-hub, r), (0.0, 0.3), (-0.1, 0.88))
        cv.region(rs, cs, discs | frame | tri, z + 0.05, label)
    _rider(cv, rng, x, z, s)


def _rider(cv: Canvas, rng: np.random.Generator, x: float, z: float, s: float) -> None:
    """The rider on a two-wheeler: leg to the pedal, leaning torso, arm to the bars, head."""
    win = cv.frontal(z, x - 0.8, x + 0.8, 0.2, 1.95)
    if win is None:
        return
    rs, cs, xx, yy = win
    u, v = (xx - x) * s, yy
    body = _capsule(u, v, (-0.12, 0.95), (0.12, 1.45), 0.14)
    body |= _capsule(u, v, (-0.1, 0.95), (0.12, 0.6), 0.075) | _capsule(
        u, v, (0.12, 0.6), (0.02, 0.3), 0.06
    )
    body |= _capsule(u, v, (0.12, 1.4), (0.42, 1.05), 0.045)
    head = (u - 0.2) ** 2 + (v - 1.66) ** 2 < 0.11**2
    colour = np.where(head[..., None], _grey(rng, 0.3, 0.8, 0.3), _any_colour(rng))
    cv.paint(rs, cs, body | head, z, RIDER, colour)


def _within(win: Window, y0: float, y1: float) -> np.ndarray:
    """[h, w] bool: the pixels of a frontal window whose height lies in (y0, y1] (all of a
    pinhole window; a panorama's window is the bounding box of a curved outline)."""
    rs, cs, _, yy = win
    shape = (rs.stop - rs.start, cs.stop - cs.start)
    return np.broadcast_to((yy > y0) & (yy <= y1), shape).copy()


def _pole(cv: Canvas, rng: np.random.Generator, x: float, z: float, toward_road: float) -> None:
    """A pole with a traffic sign, a traffic light, or a street-lamp arm."""
    h = rng.uniform(3.5, 8.0)
    w = rng.uniform(0.25, 0.45)
    grey = _grey(rng, 0.2, 0.7)
    what = rng.choice(3, p=[0.45, 0.35, 0.2])  # sign, light, lamp
    win = cv.frontal(z, x - w / 2, x + w / 2, 0.0, h)
    if win is not None:
        rs, cs, _, _ = win
        mask = _within(win, 0.0, h)
        cv.paint(rs, cs, mask, z, POLE, cv.textured(rs, cs, grey, 0.05, 0.0, 0.05))
    if what == 0:
        _sign(cv, rng, x, z - 0.05, rng.uniform(2.0, min(h, 3.5)))
    elif what == 1:
        _traffic_light(cv, rng, x, z - 0.05, min(h, rng.uniform(2.8, 4.5)))
    else:
        arm = rng.uniform(1.0, 2.5) * toward_road
        win = cv.frontal(z, min(x, x + arm), max(x, x + arm), h - 0.15, h + 0.05)
        if win is not None:
            cv.paint(win[0], win[1], _within(win, h - 0.15, h + 0.05), z, POLE, grey)


def _sign(cv: Canvas, rng: np.random.Generator, x: float, z: float, y: float) -> None:
    """A traffic sign (circle, rectangle or triangle with a border) centred at height y."""
    size = rng.uniform(0.7, 1.1)
    win = cv.frontal(z, x - size / 2, x + size / 2, y - size / 2, y + size / 2)
    if win is None:
        return
    rs, cs, xx, yy = win
    u, v = (xx - x) / (size / 2), (yy - y) / (size / 2)
    shape = rng.integers(3)
    if shape == 0:
        d = np.hypot(u, v) + 0 * v
    elif shape == 1:
        d = np.maximum(np.abs(u), np.abs(v) * rng.uniform(0.8, 1.3))
    else:
        d = np.maximum(-v, (v + 2 * np.abs(u)) / 2 + 0.25) * 1.1
    face = [
        np.array([0.8, 0.1, 0.1]),
        np.array([0.1, 0.25, 0.7]),
        np.array([0.9, 0.9, 0.9]),
        np.array([0.9, 0.75, 0.1]),
    ]
    inner, border = face[rng.integers(4)], face[rng.integers(4)]
    colour = np.where((d > 0.78)[..., None], border, inner).astype(np.float32)
    cv.paint(rs, cs, d <= 1.0, z, SIGN, colour * rng.uniform(0.6, 1.1))


def _traffic_light(cv: Canvas, rng: np.random.Generator, x: float, z: float, top: float) -> None:
    """Housing with three lamps, one lit."""
    w, h = rng.uniform(0.45, 0.6), rng.uniform(1.0, 1.4)
    win = cv.frontal(z, x - w / 2, x + w / 2, top - h, top)
    if win is None:
        return
    rs, cs, xx, yy = win
    housing = _grey(rng, 0.05, 0.3) if rng.random() < 0.7 else np.array([0.7, 0.6, 0.1], np.float32)
    colour = np.broadcast_to(housing, (rs.stop - rs.start, cs.stop - cs.start, 3)).copy()
    lit = rng.integers(3)
    lamps = [np.array([1.0, 0.15, 0.1]), np.array([1.0, 0.75, 0.1]), np.array([0.2, 1.0, 0.5])]
    for i in range(3):
        cy = top - h * (0.2 + 0.3 * i)
        lamp = (xx - x) ** 2 + (yy - cy) ** 2 < (0.3 * w) ** 2
        colour[lamp] = lamps[i] * (1.0 if i == lit else 0.25)
    cv.paint(rs, cs, _within(win, top - h, top), z, LIGHT, colour.astype(np.float32))


def _tree(cv: Canvas, rng: np.random.Generator, x: float, z: float) -> None:
    """Trunk and a lumpy canopy (union of noisy ellipses), all vegetation."""
    trunk_h, rad = rng.uniform(1.8, 3.5), rng.uniform(1.2, 2.8)
    win = cv.frontal(z, x - 1.6 * rad, x + 1.6 * rad, 0.0, trunk_h + 2.2 * rad)
    if win is None:
        return
    rs, cs, xx, yy = win
    u = xx - x
    trunk = (np.abs(u) < rng.uniform(0.12, 0.25)) & (yy < trunk_h + rad)
    canopy = np.zeros(np.broadcast_shapes(u.shape, yy.shape), bool)
    noise = cv.tex["mid"][rs, cs]
    for _ in range(int(rng.integers(3, 6))):
        cx, cy = rng.uniform(-0.6, 0.6) * rad, trunk_h + rad * rng.uniform(0.7, 1.3)
        rx, ry = rad * rng.uniform(0.6, 1.0), rad * rng.uniform(0.5, 0.9)
        canopy |= ((u - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1 + 0.5 * noise
    leaf = _green(rng)
    colour = np.where(canopy[..., None], leaf, _grey(rng, 0.15, 0.4) * np.array([1.1, 0.9, 0.7]))
    colour = colour * (1 + 0.3 * noise + 0.25 * cv.tex["hi"][rs, cs])[..., None]
    cv.paint(rs, cs, canopy | trunk, z, VEG, colour.astype(np.float32))


# -- vehicles --------------------------------------------------------------------------

#: kind -> (label, length range, width range, height range) in metres.
VEHICLES: dict[str, tuple[int, tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "car": (CAR, (3.8, 4.9), (1.7, 1.9), (1.35, 1.65)),
    "truck": (TRUCK, (6.0, 9.0), (2.3, 2.5), (3.0, 3.8)),
    "bus": (BUS, (10.0, 12.0), (2.45, 2.55), (3.0, 3.3)),
    "train": (TRAIN, (18.0, 28.0), (2.4, 2.6), (3.3, 3.6)),
}


def _back_profile(
    kind: str, u: np.ndarray, y: np.ndarray, w: float, h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(body, dark, lamp) masks of a vehicle's back face; u across, y up (metres)."""
    au = np.abs(u)
    if kind == "car":
        cab_w = 0.42 * w - (y - 0.6 * h) * 0.45
        body = ((y > 0.25) & (y < 0.6 * h)) | ((y >= 0.6 * h) & (y < h) & (au < cab_w))
        dark = ((y > 0.66 * h) & (y < 0.94 * h) & (au < cab_w - 0.08)) | (
            (y < 0.32) & (au > 0.28 * w)
        )
        lamp = (y > 0.47 * h) & (y < 0.56 * h) & (au > 0.33 * w) & (au < 0.47 * w)
    elif kind == "truck":
        body = (y > 0.95) & (y < h) | ((y > 0.45) & (au < 0.42 * w))
        dark = ((y < 0.55) & (au > 0.2 * w)) | ((y > 0.45) & (y < 0.95) & (au < 0.42 * w))
        lamp = (y > 0.85) & (y < 1.0) & (au > 0.38 * w)
    else:  # bus, train
        body = (y > (0.3 if kind == "bus" else 0.45)) & (y < h)
        dark = ((y > 0.55 * h) & (y < 0.88 * h) & (au < 0.42 * w)) | ((y < 0.35) & (au > 0.25 * w))
        lamp = (y > 0.35 * h) & (y < 0.42 * h) & (au > 0.35 * w)
    return body | dark | lamp, dark, lamp


def _side_profile(
    kind: str, s: np.ndarray, y: np.ndarray, length: float, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """(body, dark) masks of a vehicle's side; s along the length from the near end."""
    if kind == "car":
        t = np.clip((y - 0.6 * h) / (0.4 * h), 0, 1)
        cabin = (
            (y >= 0.6 * h)
            & (y < h)
            & (s > (0.2 + 0.12 * t) * length)
            & (s < (0.85 - 0.1 * t) * length)
        )
        body = ((y > 0.22) & (y < 0.6 * h)) | cabin
        dark = cabin & (y > 0.66 * h) & (y < 0.94 * h)
        dark &= (s > (0.22 + 0.12 * t) * length + 0.1) & (s < (0.83 - 0.1 * t) * length - 0.1)
        wheels = [0.18 * length, 0.8 * length]
        radius = 0.32
    elif kind == "truck":
        cargo = (s < length - 2.4) & (y > 0.95) & (y < h)
        cab = (s > length - 2.2) & (y > 0.5) & (y < 2.9)
        body = cargo | cab | ((y > 0.5) & (y < 1.0))
        dark = cab & (y > 1.8) & (y < 2.6) & (s > length - 1.5) & (s < length - 0.3)
        wheels, radius = [1.0, 2.3, length - 1.3], 0.5
    else:
        body = (y > (0.3 if kind == "bus" else 0.45)) & (y < h)
        pitch = 1.3 if kind == "bus" else 2.0
        dark = (
            (y > 0.45 * h) & (y < 0.8 * h) & ((s % pitch) > 0.15) & (s > 0.3) & (s < length - 0.3)
        )
        wheels = [2.5, length - 2.8] if kind == "bus" else [2.0, 3.5, length - 3.5, length - 2.0]
        radius = 0.5 if kind == "bus" else 0.4
    for c in wheels:
        tyre = (s - c) ** 2 + (y - radius) ** 2 < radius**2
        body = body | tyre
        dark = dark | (tyre & ((s - c) ** 2 + (y - radius) ** 2 > (0.55 * radius) ** 2))
    return body, dark


def _vehicle(
    cv: Canvas,
    rng: np.random.Generator,
    kind: str,
    xc: float,
    z0: float,
    dims: tuple[float, float, float],
) -> None:
    """A box-shaped vehicle: its near (back/front) face at z0 and its visible side."""
    label = VEHICLES[kind][0]
    length, w, h = dims
    paint = _any_colour(rng) if kind != "truck" or rng.random() < 0.5 else _grey(rng, 0.75, 0.95)
    glass = _grey(rng, 0.05, 0.35, 0.2)
    lamp_c = (
        np.array([0.9, 0.1, 0.1], np.float32)
        if rng.random() < 0.7
        else np.array([1.0, 1.0, 0.85], np.float32)
    )
    if kind == "train":  # trams: two-tone livery (light upper body, coloured skirt)
        skirt, upper = _hue(rng, (0.55, 0.95), (0.35, 0.85)), _grey(rng, 0.78, 0.97, 0.04)

        def livery(y: np.ndarray) -> np.ndarray:
            return np.where((y > 0.42 * h)[..., None], upper, skirt)

        _pantograph(cv, rng, xc, z0 + 0.3 * length, h)
    else:

        def livery(y: np.ndarray) -> np.ndarray:
            return np.broadcast_to(paint, y.shape + (3,))

    win = cv.frontal(z0, xc - w / 2, xc + w / 2, 0.0, h)
    if win is not None:
        rs, cs, xx, yy = win
        body, dark, lamp = _back_profile(kind, xx - xc, yy, w, h)
        col = np.where(dark[..., None], glass, livery(np.broadcast_to(yy, body.shape)))
        col = np.where(lamp[..., None], lamp_c, col) * (1 + 0.05 * cv.tex["hi"][rs, cs])[..., None]
        cv.paint(rs, cs, body, z0, label, col)
    xs = xc - w / 2 if xc - w / 2 > 0 else (xc + w / 2 if xc + w / 2 < 0 else 0.0)
    side = cv.side(xs, z0, z0 + length, h)
    if side is not None:
        rs, cs, zc, yy = side
        body, dark = _side_profile(kind, zc - z0, yy, length, h)
        shade = rng.uniform(0.6, 0.95)
        col = (
            np.where(dark[..., None], glass, livery(yy) * shade)
            * (1 + 0.05 * cv.tex["hi"][rs, cs])[..., None]
        )
        cv.paint(rs, cs, body, zc, label, col)
    _roofs(cv, kind, xc, z0, dims, livery(np.ones(1) * h)[0])


def _roofs(
    cv: Canvas, kind: str, xc: float, z0: float, dims: tuple[float, float, float], paint: np.ndarray
) -> None:
    """Horizontal tops of a vehicle, seen from above by the panorama's higher camera (the
    pinhole canvas draws none). A car has a waist at 0.6 h and a narrower cabin roof."""
    length, w, h = dims
    tops = [(h, w / 2, 0.0, length)]
    if kind == "car":
        cab = 0.42 * w - 0.4 * h * 0.45  # the cabin's half width at y = h (_back_profile)
        tops = [(0.6 * h, w / 2, 0.0, length), (h, cab, 0.32 * length, 0.75 * length)]
    for y, half, s0, s1 in tops:
        win = cv.top(y, xc - half, xc + half, z0 + s0, z0 + s1)
        if win is None:
            continue
        rs, cs, xx, zz = win
        mask = (np.abs(xx - xc) <= half) & (zz >= z0 + s0) & (zz <= z0 + s1)
        col = paint * (0.9 + 0.1 * (y == h)) * (1 + 0.05 * cv.tex["hi"][rs, cs])[..., None]
        cv.paint(rs, cs, mask, zz, VEHICLES[kind][0], col)


def _pantograph(cv: Canvas, rng: np.random.Generator, xc: float, z: float, h: float) -> None:
    """A tram's pantograph on its roof: a diamond of dark struts under a contact bar."""
    win = cv.frontal(z, xc - 0.9, xc + 0.9, h, h + 1.1)
    if win is None:
        return
    rs, cs, xx, yy = win
    u, v = np.abs(xx - xc), yy - h
    struts = np.abs(u - 0.7 * np.minimum(v, 1.0 - v).clip(0) * 1.4) < 0.05
    mask = (struts & (v < 1.0)) | ((v > 0.98) & (v < 1.08) & (u < 0.85)) | ((v < 0.15) & (u < 0.4))
    mask &= v > 0  # all of a pinhole window; a panorama's reaches below the roof
    cv.paint(rs, cs, mask, z, TRAIN, np.full(3, rng.uniform(0.1, 0.3), np.float32))


# -- scene assembly --------------------------------------------------------------------


@dataclass
class _Layout:
    """Objects placed in the street before drawing (for shadows and overlap checks)."""

    boxes: list[tuple[float, float, float, float]]
    draws: list[Callable[[], None]]

    def free(self, x0: float, x1: float, z0: float, z1: float) -> bool:
        return all(x1 < a or x0 > b or z1 < c or z0 > d for a, b, c, d in self.boxes)


def _place_vehicles(cv: Canvas, rng: np.random.Generator, st: Street, lay: _Layout) -> None:
    lane_w = 2 * st.half / st.lanes
    if rng.random() < 0.15:  # a tram on rails in the middle of the street
        dims = _dims(rng, "train")
        z0 = rng.uniform(12, 45)
        lay.boxes.append((st.xr - 1.3, st.xr + 1.3, z0, z0 + dims[0]))
        lay.draws.append(lambda: _vehicle(cv, rng, "train", st.xr, z0, dims))
    for sgn, edge in ((-1, st.xr - st.half), (1, st.xr + st.half)):
        if rng.random() < 0.65:  # a row of parked cars
            z = rng.uniform(3, 15)
            while z < 70:
                kind = "car" if rng.random() < 0.88 else "truck"
                dims = _dims(rng, kind)
                xc = edge - sgn * (dims[1] / 2 + 0.2)
                _add_vehicle(cv, rng, lay, kind, xc, z, dims)
                z += dims[0] + rng.uniform(0.5, 9)
    for _ in range(int(rng.integers(0, 6))):
        kind = rng.choice(["car", "car", "car", "truck", "bus", "bus"])
        dims = _dims(rng, kind)
        xc = st.xr - st.half + (int(rng.integers(st.lanes)) + 0.5) * lane_w + rng.uniform(-0.3, 0.3)
        _add_vehicle(cv, rng, lay, kind, xc, rng.uniform(5, 70), dims)


def _dims(rng: np.random.Generator, kind: str) -> tuple[float, float, float]:
    _, lr, wr, hr = VEHICLES[kind]
    return rng.uniform(*lr), rng.uniform(*wr), rng.uniform(*hr)


def _add_vehicle(
    cv: Canvas,
    rng: np.random.Generator,
    lay: _Layout,
    kind: str,
    xc: float,
    z0: float,
    dims: tuple[float, float, float],
) -> None:
    box = (xc - dims[1] / 2, xc + dims[1] / 2, z0, z0 + dims[0])
    if lay.free(*box):
        lay.boxes.append(box)
        lay.draws.append(partial(_vehicle, cv, rng, str(kind), xc, z0, dims))


def _place_street_furniture(cv: Canvas, rng: np.random.Generator, st: Street, lay: _Layout) -> None:
    """Poles (signs, lights, lamps), trees, pedestrians and riders."""
    for _ in range(int(rng.integers(2, 7))):
        side = int(rng.integers(2))
        sgn = 1.0 if side else -1.0
        x = st.xr + sgn * (st.half + rng.uniform(0.4, 1.0))
        z = rng.uniform(4, 40)
        lay.draws.append(partial(_pole, cv, rng, x, z, -sgn))
    for _ in range(int(rng.integers(0, 7))):
        side = int(rng.integers(2))
        lo, hi = sorted((st.walk[side], st.near[side]))
        x = (
            rng.uniform(lo, hi)
            if st.verge_terrain[side] and hi - lo > 1
            else st.xr + (1 if side else -1) * (st.half + rng.uniform(0.8, 1.5))
        )
        z = rng.uniform(5, 50)
        lay.draws.append(partial(_tree, cv, rng, x, z))
    for _ in range(int(rng.integers(0, 9))):
        side = int(rng.integers(2))
        edge = st.xr + (1 if side else -1) * st.half
        x = rng.uniform(min(edge, st.walk[side]), max(edge, st.walk[side]))
        if rng.random() < 0.15:
            x = st.xr + rng.uniform(-st.half, st.half)
        z = rng.uniform(3, 30)
        if lay.free(x - 0.3, x + 0.3, z - 0.3, z + 0.3):
            lay.draws.append(partial(_person, cv, rng, x, z))
    for _ in range(int(rng.poisson(1.2))):
        x = st.xr + rng.choice([-1, 1]) * (st.half - rng.uniform(0.5, 1.5))
        z = rng.uniform(4, 25)
        if lay.free(x - 0.5, x + 0.5, z - 1, z + 1):
            lay.boxes.append((x - 0.5, x + 0.5, z - 1, z + 1))
            motor = bool(rng.random() < 0.45)
            lay.draws.append(partial(_two_wheeler, cv, rng, x, z, motor))


def _ego_hood(cv: Canvas, rng: np.random.Generator) -> None:
    """The recording car's bonnet at the bottom (void in Cityscapes: 'ego vehicle')."""
    h, w = cv.cam.height, cv.cam.width
    top = h * rng.uniform(0.88, 0.95)
    cols = (np.arange(w) + 0.5) / w - 0.5
    edge = top + h * 0.08 * cols**2 * 4
    rows = np.arange(h)[:, None] + 0.5
    mask = rows > edge[None, :]
    colour = _any_colour(rng) * 0.6 * (1 + 0.05 * cv.tex["hi"])[..., None]
    cv.paint(slice(0, h), slice(0, w), mask, 0.0, VOID, colour)


def _tone(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, white balance, gamma, optional slight blur and sensor noise -> uint8."""
    wb = rng.uniform(0.88, 1.12, 3).astype(np.float32)
    img = np.clip(img * wb * rng.uniform(0.7, 1.25), 0, 1) ** rng.uniform(0.8, 1.25)
    if rng.random() < 0.4:
        img = img.copy()
        img[1:-1] = 0.25 * img[:-2] + 0.5 * img[1:-1] + 0.25 * img[2:]
        img[:, 1:-1] = 0.25 * img[:, :-2] + 0.5 * img[:, 1:-1] + 0.25 * img[:, 2:]
    img = img + rng.normal(0, rng.uniform(0.004, 0.025), img.shape).astype(np.float32)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def _scene(
    cv: Canvas,
    rng: np.random.Generator,
    st: Street,
    sky_rng: np.random.Generator,
    ground_rng: np.random.Generator,
) -> None:
    """Draw sky, skyline, facades, near layer, vehicles, ground and street furniture.

    The sky's and the ground's materials come from their own generators, so the two
    halves of a panorama can share them (the pinhole scene passes ``rng`` for both).
    """
    _sky(cv, sky_rng)
    _skyline(cv, rng)
    for side in (0, 1):
        _facades(cv, rng, st.facade[side])
        if abs(st.near[side] - st.facade[side]) > 0.2 or rng.random() < 0.5:
            _near_layer(cv, rng, st.near[side])
    lay = _Layout([], [])
    _place_vehicles(cv, rng, st, lay)
    shadows = [(a - 0.2, b + 0.2, c - 0.3, d + 0.2) for a, b, c, d in lay.boxes]
    _ground(cv, ground_rng, st, shadows)
    _place_street_furniture(cv, rng, st, lay)
    for draw in lay.draws:
        draw()


def render_street(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Render one random street scene.

    Output
    ------
    image : [height, width, 3] uint8
    labels : [height, width] uint8 trainIds (0..18), 255 = void (ego vehicle)
    """
    cam = _camera(rng, height, width)
    # Textures draw size-dependent amounts of noise: give them their own stream so the
    # scene's geometry is the same at every image size.
    cv = Canvas(cam, np.random.default_rng(rng.integers(2**63)))
    st = _street(rng)
    _scene(cv, rng, st, rng, rng)
    if rng.random() < 0.3:
        _ego_hood(cv, rng)
    cv.finish()
    return _tone(cv.image, rng), cv.labels


def _mirrored(st: Street) -> Street:
    """The same street seen from the camera turned around (X -> -X, left and right swap)."""
    return Street(
        -st.xr, st.half, st.lanes, (-st.walk[1], -st.walk[0]), (-st.near[1], -st.near[0]),
        (-st.facade[1], -st.facade[0]), (st.verge_terrain[1], st.verge_terrain[0]),
    )  # fmt: skip


def render_panorama(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Render one random street as an equirectangular 360 x 180 degree panorama.

    The camera stands on the road at height 1.5..2.5 m; the street runs along
    longitude 0 (forward, +z) and 180 deg. Each hemisphere is a :class:`HalfPanorama`
    holding its own half of the street (own buildings, vehicles, people) drawn by the
    pinhole scene code; the back half's street is the front's cross-section mirrored, so
    sidewalks, kerbs and facade lines meet at z = 0 beside the camera (lon = +-90 deg).
    Sky, road and paving materials and the texture fields are shared by both halves.

    Input: height H (even) and width W = 2 H.
    Output
    ------
    image : [H, W, 3] uint8
    labels : [H, W] uint8 trainIds (0..18); no ego vehicle, so no void
    """
    hc = rng.uniform(1.5, 2.5)
    # One texture field over the whole sphere (continuous across the halves' seams); its
    # cells are half the pinhole's in pixels since a panorama pixel spans ~4x the angle.
    tex = texture_fields(np.random.default_rng(rng.integers(2**63)), (height, width), width / 512)
    st = _street(rng)
    sky_seed, ground_seed = (int(v) for v in rng.integers(2**63, size=2))
    q = width // 4
    halves = []
    for back, street in ((False, st), (True, _mirrored(st))):
        # The back half is the front one turned by 180 deg: panorama columns rolled by W/2.
        part = {k: np.roll(v, q if back else -q, axis=1)[:, : 2 * q] for k, v in tex.items()}
        cv = PanoCanvas(HalfPanorama(height, 2 * q, hc), part)
        sky_rng, ground_rng = np.random.default_rng(sky_seed), np.random.default_rng(ground_seed)
        _scene(cv, rng, street, sky_rng, ground_rng)
        cv.finish()
        halves.append(cv)
    front, rear = halves
    image = np.concatenate([rear.image[:, q:], front.image, rear.image[:, :q]], axis=1)
    labels = np.concatenate([rear.labels[:, q:], front.labels, rear.labels[:, :q]], axis=1)
    return _tone(image, rng), labels


#: Camera models of :class:`StreetScenes`.
PROJECTIONS: tuple[str, ...] = ("pinhole", "equirectangular")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(v, int | np.integer) for v in size):
        raise ValueError(f"size {size!r} must be (height, width) integers")
    h, w = int(size[0]), int(size[1])
    if not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise ValueError(f"size {size!r} outside the allowed range [32, 4096] per side")
    return h, w


class StreetScenes(ImageDataset):
    """Procedural Cityscapes-like street scenes, deterministic per (seed, split, index).

    Parameters
    ----------
    split : "train" | "val" | "test"
        Disjoint image streams (the split is mixed into each image's SeedSequence).
    count : int
        Number of images (>= 1).
    size : (H, W)
        Image size in pixels, each side in [32, 4096]; default 128 x 256 (also 256 x 512).
        An equirectangular panorama needs W = 2 H with H even.
    seed : int
        Dataset seed (>= 0; 0 is valid).
    projection : "pinhole" | "equirectangular"
        A forward-looking car camera (default), or a 360 x 180 degree panorama from a
        camera standing in the street (:func:`render_panorama`; no ego vehicle).

    ``ds[i]`` returns :class:`Sample` with image [H, W, 3] uint8 and labels [H, W] uint8
    trainIds (255 = void), named ``"streetscenes/<split>/<index:06d>"`` (pinhole) or
    ``"streetscenes360/<split>/<index:06d>"`` (panorama, its own image stream).
    """

    classes = CLASS_NAMES
    num_classes = NUM_CLASSES

    def __init__(
        self,
        split: str = "train",
        count: int = 1000,
        size: tuple[int, int] = (128, 256),
        seed: int = 0,
        projection: str = "pinhole",
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} unknown; choose one of {sorted(SPLITS)}")
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise ValueError(f"count {count!r} must be an integer >= 1")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed {seed!r} must be an integer >= 0")
        self.split, self.length, self.seed = split, int(count), int(seed)
        self.size = _check_size(tuple(size))  # type: ignore[arg-type]
        if projection not in PROJECTIONS:
            raise ValueError(
                f"projection {projection!r} unknown; choose one of {list(PROJECTIONS)}"
            )
        h, w = self.size
        if projection == "equirectangular" and (w != 2 * h or h % 2):
            raise ValueError(
                f"equirectangular size {h}x{w} must be H x 2H with H even (360 x 180 "
                "degrees, whole quarter turns of columns), e.g. 128 x 256"
            )
        self.projection = projection

    def __len__(self) -> int:
        return self.length

    def rng(self, index: int) -> np.random.Generator:
        """The generator of image ``index``: SeedSequence((seed, split id, index)) for the
        pinhole camera, SeedSequence((seed, split id, index, 1)) for panoramas."""
        entropy = [self.seed, SPLITS[self.split], index]
        if self.projection == "equirectangular":
            entropy.append(1)
        return np.random.default_rng(np.random.SeedSequence(entropy))

    def _load(self, index: int) -> Sample:
        if self.projection == "equirectangular":
            image, labels = render_panorama(self.rng(int(index)), *self.size)
            name = f"streetscenes360/{self.split}/{int(index):06d}"
        else:
            image, labels = render_street(self.rng(int(index)), *self.size)
            name = f"streetscenes/{self.split}/{int(index):06d}"
        return Sample(image=image, labels=labels, name=name)
