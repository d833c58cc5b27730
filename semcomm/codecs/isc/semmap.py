"""The base layer's semantic map s: majority-vote downsampling and lossless coding.

::

    s [H, W] uint8 trainIds (255 void) ─► classes c in 0..19 (void = 19)
        ─► majority vote over f x f blocks ─► m [H/f, W/f]     (f = map_factor; 1 = exact)
        ─► prediction symbols u [H/f, W/f] in 0..21 (raster order):
               u = 0            m == W  (left neighbour)
               u = 1            m != W and m == N (upper neighbour)
               u = 2 + m        otherwise (the label itself)
        ─► TokenGrid "map" with a static prior over the 22 symbols (learned from
           training maps, stored in the model file) ─► range coder (semcomm.bitstream)

    receiver: u ─► m (row by row: N known, left runs by forward fill) ─► nearest
    upsampling ─► s_hat [H, W] (19 -> 255)

Our choices (the paper codes the map but does not say how, REFERENCE.md Sec. 2):

* **Lossless at a chosen resolution.** Street-scene maps are piecewise constant, so a
  predictive lossless coder costs well under a bit per map cell: on the built-in
  128 x 256 street scenes about 180 bytes per map at f = 4 (0.044 bpp of the image),
  70 bytes at f = 8 (0.017 bpp) and 1.1 kB at f = 1 (0.27 bpp, the exact map). A
  learned lossy map coder would add a network and a second source of error.
* **Context = the W and N labels, through prediction symbols, with a static prior.**
  Symbol 0 ("same as left") and 1 ("same as above") carry almost all mass; a label
  appears only where a new region starts. This captures the W/N context of a JBIG-style
  template without an adaptive model, so the symbols go through the shared bitstream
  layer (packets, CRC, prior fingerprints) and both ends stay vectorised (the inverse
  runs row by row). An adaptive per-context model would save a little more but needs a
  bit-serial decoder and its own framing.
* **Majority vote, ties to the smaller trainId**, void counted as a class (so a block
  that is mostly void stays void).
* Out-of-grid neighbours: W of column 0 is N (the label above), W at (0, 0) is class 0,
  N of row 0 is W; symbol 1 never occurs in row 0 (decoded as 0 if corrupt bytes
  produced it; the packet CRC makes that practically impossible).
"""

from __future__ import annotations

import numpy as np

from semcomm.data.types import NUM_CLASSES, VOID

#: Classes of the coded map: 19 trainIds + void.
MAP_CLASSES = NUM_CLASSES + 1
#: Index of void in the coded map.
VOID_CLASS = NUM_CLASSES
#: Alphabet of the prediction symbols: same-as-W, same-as-N, then the 20 labels.
MAP_SYMBOLS = 2 + MAP_CLASSES
SYM_W, SYM_N = 0, 1


def to_classes(labels: np.ndarray) -> np.ndarray:
    """trainIds [H, W] (0..18, 255 void) -> classes [H, W] uint8 in 0..19 (19 = void).

    ValueError naming the offending values when a label is neither a trainId nor void.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be an integer [H, W] map, got shape {lab.shape} "
                         f"dtype {lab.dtype}")
    bad = (lab != VOID) & ((lab < 0) | (lab >= NUM_CLASSES))
    if bad.any():
        raise ValueError(f"labels have values {sorted(set(lab[bad].tolist()))[:5]}; allowed "
                         f"[0, {NUM_CLASSES}) and {VOID} (void)")
    return np.where(lab == VOID, VOID_CLASS, lab).astype(np.uint8)


def to_labels(classes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_classes`: [H, W] classes 0..19 -> trainIds uint8 (255 void)."""
    return np.where(classes == VOID_CLASS, VOID, classes).astype(np.uint8)


def majority_downsample(classes: np.ndarray, factor: int) -> np.ndarray:
    """[H, W] classes -> [H/f, W/f] uint8: the most frequent class of each f x f block
    (ties to the smaller class). ``factor`` 1 returns a copy."""
    c = np.asarray(classes)
    h, w = c.shape
    if factor < 1 or h % factor or w % factor:
        raise ValueError(f"map size {h}x{w} is not a multiple of map_factor {factor}")
    if factor == 1:
        return c.astype(np.uint8, copy=True)
    hb, wb = h // factor, w // factor
    block = (np.arange(h)[:, None] // factor) * wb + np.arange(w)[None, :] // factor
    counts = np.bincount((block * MAP_CLASSES + c.astype(np.int64)).ravel(),
                         minlength=hb * wb * MAP_CLASSES).reshape(hb, wb, MAP_CLASSES)
    return counts.argmax(axis=2).astype(np.uint8)  # argmax takes the first maximum


def upsample_map(m: np.ndarray, factor: int) -> np.ndarray:
    """Nearest upsampling [h, w] -> [h f, w f] (what the receiver shows as s_hat)."""
    return np.repeat(np.repeat(m, factor, axis=0), factor, axis=1)


def _neighbours(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictors W and N of every cell (out-of-grid rules in the module docstring)."""
    m = m.astype(np.int64)
    west = np.empty_like(m)
    west[:, 1:] = m[:, :-1]
    west[1:, 0] = m[:-1, 0]
    west[0, 0] = 0
    north = np.empty_like(m)
    north[1:] = m[:-1]
    north[0] = west[0]
    return west, north


def map_symbols(m: np.ndarray) -> np.ndarray:
    """Coded map [h, w] classes 0..19 -> prediction symbols [h, w] int64 in [0, 22)."""
    m = np.asarray(m).astype(np.int64)
    if m.size and (m.min() < 0 or m.max() >= MAP_CLASSES):
        raise ValueError(f"map classes must lie in [0, {MAP_CLASSES}), found "
                         f"[{m.min()}, {m.max()}]")
    west, north = _neighbours(m)
    return np.where(m == west, SYM_W, np.where(m == north, SYM_N, 2 + m))


def map_from_symbols(symbols: np.ndarray) -> np.ndarray:
    """Inverse of :func:`map_symbols`: [h, w] symbols in [0, 22) -> classes uint8."""
    u = np.asarray(symbols).astype(np.int64)
    if u.ndim != 2 or u.size == 0 or u.min() < 0 or u.max() >= MAP_SYMBOLS:
        raise ValueError(f"map symbols must be a non-empty [h, w] array in [0, {MAP_SYMBOLS})")
    h, w = u.shape
    out = np.empty((h, w), dtype=np.int64)
    cols = np.arange(w)
    for i in range(h):
        row = u[i]
        vals = np.where(row >= 2, row - 2, -1)
        if i:  # in row 0 a (never encoded) SYM_N stays -1 and is filled like SYM_W
            vals = np.where(row == SYM_N, out[i - 1], vals)
        if vals[0] < 0:  # left of column 0 is the cell above (or class 0 at the corner)
            vals[0] = out[i - 1, 0] if i else 0
        last = np.maximum.accumulate(np.where(vals >= 0, cols, 0))
        out[i] = vals[last]
    return out.astype(np.uint8)
