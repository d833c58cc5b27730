"""Gray QAM mapping and soft demapping in NumPy/numba (Sionna's conventions).

Constellation (TS 38.211 5.1, identical to ``sionna.phy.mapping.qam``)
---------------------------------------------------------------------
Symbol label ``b_0 .. b_{m-1}`` (b_0 first on the wire). Even bits ``b_0, b_2, ..``
Gray-label the real PAM coordinate, odd bits ``b_1, b_3, ..`` the imaginary one, with
``pam(b) = (1 - 2 b_0) (2^{len-1} - pam(b_1..))`` and unit average energy (Es = 1).

Demapping
---------
Because the labels split into a real and an imaginary half, the exact a-posteriori LLR
of each bit needs only the PAM coordinate it labels (the 2-D Gaussian likelihood
factorises), so both methods work per dimension on ``2^{m/2}`` levels:

* ``app``: ``llr = log sum_{c: b=1} exp(-|y-c|^2/no) - log sum_{c: b=0} exp(-|y-c|^2/no)``
  (exact: ratios of sums of exp(metric - max metric), with a per-subset log-sum-exp
  where a sum would underflow).
* ``maxlog``: the max-log approximation; its sign is the nearest-point decision.

LLRs are logits ``log p(b=1|y) / p(b=0|y)`` (Sionna's sign convention), per symbol
noise variance ``no`` (post-equalisation).
"""

from __future__ import annotations

import numba
import numpy as np


def pam_levels(bits_per_dim: int) -> np.ndarray:
    """Unnormalised Gray PAM level of every label (MSB first): [2^h] float64."""
    levels = np.zeros(2**bits_per_dim)
    for label in range(2**bits_per_dim):
        b = [(label >> (bits_per_dim - 1 - i)) & 1 for i in range(bits_per_dim)]
        levels[label] = _pam_gray(b)
    return levels


def _pam_gray(b: list[int]) -> int:
    if len(b) > 1:
        return (1 - 2 * b[0]) * (2 ** (len(b) - 1) - _pam_gray(b[1:]))
    return 1 - 2 * b[0]


def qam_points(bits_per_symbol: int) -> np.ndarray:
    """Unit-energy Gray QAM constellation, point ``i`` labelled by binary(i): [2^m] complex64."""
    if bits_per_symbol not in (2, 4, 6, 8):
        raise ValueError(f"bits_per_symbol {bits_per_symbol} not one of 2, 4, 6, 8")
    h = bits_per_symbol // 2
    levels = pam_levels(h) / _pam_norm(h)
    idx = np.arange(2**bits_per_symbol)
    re_label = _subword(idx, bits_per_symbol, 0)
    im_label = _subword(idx, bits_per_symbol, 1)
    return (levels[re_label] + 1j * levels[im_label]).astype(np.complex64)


def _pam_norm(h: int) -> float:
    """sqrt of the mean energy of the 2-D constellation with 2^h levels per axis."""
    levels = pam_levels(h)
    return float(np.sqrt(2.0 * np.mean(levels**2)))


def _subword(idx: np.ndarray, m: int, parity: int) -> np.ndarray:
    """Integer formed by bits ``parity, parity+2, ..`` (MSB first) of each m-bit label."""
    out = np.zeros_like(idx)
    for pos in range(parity, m, 2):
        out = (out << 1) | ((idx >> (m - 1 - pos)) & 1)
    return out


class QamModem:
    """Mapper and demapper for one Gray QAM order.

    Parameters
    ----------
    bits_per_symbol : {2, 4, 6, 8}
    """

    def __init__(self, bits_per_symbol: int) -> None:
        self.points = qam_points(bits_per_symbol)
        self.bits_per_symbol = bits_per_symbol
        h = bits_per_symbol // 2
        self._levels = (pam_levels(h) / _pam_norm(h)).astype(np.float32)
        labels = np.arange(2**h)
        self._label_bits = ((labels[:, None] >> np.arange(h - 1, -1, -1)) & 1).astype(np.uint8)

    def map(self, bits: np.ndarray) -> np.ndarray:
        """[N, S*m] uint8 bits -> [N, S] complex64 symbols."""
        m = self.bits_per_symbol
        if bits.ndim != 2 or bits.shape[1] % m:
            raise ValueError(f"bits shape {bits.shape} is not [N, multiple of {m}]")
        out = np.empty((bits.shape[0], bits.shape[1] // m), dtype=np.complex64)
        _map(np.ascontiguousarray(bits, dtype=np.uint8), self.points, m, out)
        return out

    def demap(self, y: np.ndarray, noise_var: np.ndarray | float, method: str) -> np.ndarray:
        """Soft demapping.

        Input
        -----
        y : [N, S] complex64          equalised symbols
        noise_var : [N, S] float32 or scalar   noise variance per symbol (> 0)
        method : "app" | "maxlog"
        Output
        ------
        llr : [N, S*m] float32        logits log p(1)/p(0), bit order as mapped
        """
        if method not in ("app", "maxlog"):
            raise ValueError(f"demapping method {method!r} not one of ['app', 'maxlog']")
        no = np.broadcast_to(np.asarray(noise_var, dtype=np.float32), y.shape)
        y = np.ascontiguousarray(y, dtype=np.complex64)
        out = np.empty((y.shape[0], y.shape[1] * self.bits_per_symbol), dtype=np.float32)
        _demap(y.view(np.float32), np.ascontiguousarray(no), self._levels,
               self._label_bits, method == "app", out)
        return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _map(bits, points, m, out):
    """Symbol s of row r is the point whose label is bits[r, s*m : (s+1)*m] (MSB first)."""
    for r in range(bits.shape[0]):
        row = bits[r]
        for s in range(out.shape[1]):
            label = 0
            for b in range(m):
                label = (label << 1) | row[s * m + b]
            out[r, s] = points[label]


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def _demap(yf, no, levels, label_bits, app, out):
    """Per row, per real dimension: metrics of every PAM level, then each bit's LLR.

    ``yf`` is the [N, 2S] float32 view of the complex symbols; each row is split into
    its real and imaginary parts in scratch (no NumPy copies under the GIL).

    Loops run over symbols innermost (contiguous) so they vectorise. With one bit per
    dimension (QPSK) app and max-log coincide and the exponentials are skipped.
    """
    num_levels, h = label_bits.shape
    m = 2 * h
    num_sym = yf.shape[1] // 2
    use_app = app and h > 1
    tiny = np.float32(1e-30)  # noise variance floor
    neg = np.float32(-3.0e38)  # finite: fastmath assumes no infinities
    metric = np.empty((num_levels, num_sym), dtype=np.float32)  # scratch, reused per row
    raw = np.empty((num_levels, num_sym), dtype=np.float32)
    mx1 = np.empty(num_sym, dtype=np.float32)
    mx0 = np.empty(num_sym, dtype=np.float32)
    inv_no = np.empty(num_sym, dtype=np.float32)
    yr = np.empty(num_sym, dtype=np.float32)
    yi = np.empty(num_sym, dtype=np.float32)
    for r in range(yf.shape[0]):
        row = yf[r]
        for s in range(num_sym):
            inv_no[s] = np.float32(1.0) / max(no[r, s], tiny)
            yr[s] = row[2 * s]
            yi[s] = row[2 * s + 1]
        for dim in range(2):
            y = yr if dim == 0 else yi
            for p in range(num_levels):
                lev = levels[p]
                mp = metric[p]
                for s in range(num_sym):
                    d = y[s] - lev
                    mp[s] = -d * d * inv_no[s]
            if use_app:
                raw[:] = metric
                _exp_shifted(metric)
            for b in range(h):
                col = 2 * b + dim
                if use_app:
                    _app_bit(metric, raw, label_bits[:, b], mx1, mx0, out[r], col, m)
                else:
                    _maxlog_bit(metric, label_bits[:, b], mx1, mx0, out[r], col, m, neg)


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, inline="always")
def _maxlog_bit(metric, bits, mx1, mx0, out_row, col, m, neg):
    mx1[:] = neg
    mx0[:] = neg
    for p in range(metric.shape[0]):
        mp = metric[p]
        dst = mx1 if bits[p] else mx0
        for s in range(mp.shape[0]):
            dst[s] = max(dst[s], mp[s])
    for s in range(mx1.shape[0]):
        out_row[s * m + col] = mx1[s] - mx0[s]


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, inline="always")
def _exp_shifted(metric):
    """metric[p, s] -> exp(metric[p, s] - max_p metric[p, s]) in place (LLRs need ratios only)."""
    for s in range(metric.shape[1]):
        top = metric[0, s]
        for p in range(1, metric.shape[0]):
            top = max(top, metric[p, s])
        for p in range(metric.shape[0]):
            metric[p, s] = np.exp(metric[p, s] - top)


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, inline="always")
def _app_bit(expm, raw, bits, s1, s0, out_row, col, m):
    """Exact LLR: log of the ratio of subset sums of exp(metric - max metric).

    Where a subset's sum is below 1e-20 (all its points > 46 nats from the best one)
    the ratio loses precision, so that symbol is redone as a log-sum-exp per subset.
    """
    s1[:] = 0.0
    s0[:] = 0.0
    for p in range(expm.shape[0]):
        ep = expm[p]
        dst = s1 if bits[p] else s0
        for s in range(ep.shape[0]):
            dst[s] += ep[s]
    floor = np.float32(1e-20)
    for s in range(s1.shape[0]):
        a, b = s1[s], s0[s]
        if a < floor or b < floor:
            out_row[s * m + col] = _lse_subset(raw, bits, s, 1) - _lse_subset(raw, bits, s, 0)
        else:
            out_row[s * m + col] = np.log(a / b)


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _lse_subset(raw, bits, s, value):
    """log sum exp(raw[p, s]) over the levels p whose label bit equals ``value``."""
    top = np.float32(-3.0e38)
    for p in range(raw.shape[0]):
        if bits[p] == value:
            top = max(top, raw[p, s])
    acc = np.float32(0.0)
    for p in range(raw.shape[0]):
        if bits[p] == value:
            acc += np.exp(raw[p, s] - top)
    return top + np.log(acc)
