"""5G NR LDPC codes: Sionna as the reference, compiled NumPy/numba kernels for speed.

Both encoders and both decoders here speak exactly Sionna's conventions, so the
``decoder="fast" | "sionna"`` switch of :class:`channels.LinkConfig` is a drop-in:

::

    u [N, k] uint8 ──► encode ──► c [N, n] uint8          (TS 38.212 5.3.2 encoding,
                                                          5.4.2.1 rate matching (any rv),
                                                          5.4.2.2 bit interleaving)
    llr [N, n] float32 ──► decode ──► u_hat [N, k] uint8, iterations [N] int32

* ``llr`` are **logits** ``log p(b=1)/p(b=0)`` per transmitted coded bit, in the order
  the encoder emitted them (i.e. still interleaved), exactly what Sionna's
  ``LDPC5GDecoder`` consumes and Sionna's ``Demapper`` emits. Internally the decoders
  use the textbook ``log p(0)/p(1)`` (= -logit).
* Rate matching is an index map (:func:`rate_match_positions`): transmitted bit ``t`` is
  mother-code bit ``pos[t]``. The encoder gathers ``c[pos]``; rate recovery
  (:meth:`FastLdpcDecoder.recover`) scatters the LLRs back onto the mother code, **adding**
  those that land on the same bit (repetition, HARQ combining), so every decoder core
  (numba here, the GPU one) consumes the same ``l_ch [N, n_dec]`` internal LLRs.
* Rate recovery (as in Sionna): the 2Z punctured systematic bits get LLR 0, filler bits
  (k..k_ldpc) are known zeros (internal LLR +llr_max), untransmitted parity bits get 0.

The fast decoder (:class:`FastLdpcDecoder`) is a layered offset/plain min-sum decoder
over the quasi-cyclic base graph (one layer = one base-graph row = Z independent checks,
processed Z-wide so the compiler vectorises it), with per-codeword early termination on a
zero syndrome. With ``offset=0.5`` and ``llr_max=20`` it is the same algorithm as
Sionna's ``LDPC5GDecoder(cn_update="offset-minsum", cn_schedule="layered")`` (v2c
messages clipped to +-llr_max, sign(0)=+1, offset 0.5), differing only by the early stop,
float summation order and ties (an APP of exactly 0 decides 0 here, 1 in Sionna).
Layers whose extension parity block is entirely punctured are pruned (they carry no
information), as Sionna's ``prune_pcm`` does.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp

#: Default clipping of channel LLRs and v2c messages, as Sionna's ``llr_max``.
LLR_MAX = 20.0


@dataclass(frozen=True)
class LdpcCode:
    """A rate-matched 5G NR LDPC code and the index tables the fast kernels need.

    Built by :func:`build_code` from the 3GPP base-graph tables, with the same selection,
    lifting, rate matching and interleaving as Sionna's ``LDPC5GEncoder``.

    Attributes
    ----------
    k, n : int
        Information bits per codeword and transmitted (rate-matched) coded bits.
    bits_per_symbol : int
        Modulation order used by the output interleaver (TS 38.212 5.4.2.2).
    base_graph : str
        ``"bg1"`` or ``"bg2"``.
    z : int
        Lifting size Z (TS 38.212 Table 5.3.2-1).
    k_ldpc, n_ldpc : int
        Systematic bits incl. fillers (22Z or 10Z) and full mother codeword length.
    kb : int
        Systematic base-graph columns (22 for BG1, 10 for BG2).
    num_layers : int
        Base-graph rows kept by the decoder (>= 4; fully punctured extension rows pruned).
    layer_ptr, edge_col, edge_shift : int32 arrays
        Base-graph edges of the kept rows: row ``l`` owns edges
        ``layer_ptr[l]:layer_ptr[l+1]``; edge ``e`` connects row ``l`` to base column
        ``edge_col[e]`` with cyclic shift ``edge_shift[e]`` (row ``l*Z+i`` checks bit
        ``edge_col[e]*Z + (i+edge_shift[e]) % Z``).
    binv_ptr, binv_idx : int32 arrays
        CSR of the GF(2) inverse of the 4Z x 4Z core parity block B (encoding).
    out_int : int32 [n]
        Output interleaver: transmitted bit ``t`` is rate-matched bit ``out_int[t]``.
    rvs : tuple of int
        Redundancy versions the kept rows serve (a bit any of them sends is decodable).
    """

    k: int
    n: int
    bits_per_symbol: int
    base_graph: str
    z: int
    k_ldpc: int
    n_ldpc: int
    kb: int
    num_layers: int
    layer_ptr: np.ndarray
    edge_col: np.ndarray
    edge_shift: np.ndarray
    binv_ptr: np.ndarray
    binv_idx: np.ndarray
    out_int: np.ndarray
    rvs: tuple[int, ...] = (0,)

    @property
    def k_filler(self) -> int:
        """Filler bits appended to the k information bits (TS 38.212 5.2.2)."""
        return self.k_ldpc - self.k

    @property
    def out_int_inv(self) -> np.ndarray:
        """Inverse interleaver: rate-matched bit ``q`` is transmitted at ``out_int_inv[q]``."""
        return np.argsort(self.out_int).astype(np.int32)

    @property
    def n_dec(self) -> int:
        """Length of the decoder's variable-node vector (kept base columns times Z)."""
        return (self.kb + self.num_layers) * self.z


def sionna_encoder(k: int, n: int, bits_per_symbol: int, device: str = "cpu"):
    """Sionna's ``LDPC5GEncoder`` for (k, n) with the 5G output interleaver (the reference)."""
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    return LDPC5GEncoder(k, n, num_bits_per_symbol=bits_per_symbol, device=device)


#: Lifting sizes Z per set index i_LS (TS 38.212 Table 5.3.2-1).
LIFTING_SETS = (
    (2, 4, 8, 16, 32, 64, 128, 256),
    (3, 6, 12, 24, 48, 96, 192, 384),
    (5, 10, 20, 40, 80, 160, 320),
    (7, 14, 28, 56, 112, 224),
    (9, 18, 36, 72, 144, 288),
    (11, 22, 44, 88, 176, 352),
    (13, 26, 52, 104, 208),
    (15, 30, 60, 120, 240),
)
#: (rows, columns) of the base graphs (TS 38.212 Tables 5.3.2-2 and 5.3.2-3).
BASE_GRAPH_SHAPE = {"bg1": (46, 68), "bg2": (42, 52)}


def select_base_graph(k: int, rate: float) -> str:
    """Base graph for k information bits at rate k/n (TS 38.212 7.2.2, as Sionna)."""
    if k <= 292 or (k <= 3824 and rate <= 0.67) or rate <= 0.25:
        return "bg2"
    return "bg1"


def select_lifting(k: int, base_graph: str) -> tuple[int, int]:
    """(Z, i_LS): smallest Z with kb * Z >= k (TS 38.212 5.3.2; C = 1, K' = k)."""
    kb = 22 if base_graph == "bg1" else 10 if k > 640 else 9 if k > 560 else 8 if k > 192 else 6
    z, i_ls = min((zz, i) for i, zs in enumerate(LIFTING_SETS) for zz in zs if kb * zz >= k)
    return z, i_ls


@functools.lru_cache(maxsize=2)
def _base_graph_table(base_graph: str) -> np.ndarray:
    """[num_entries, 10] rows (row, column, V for i_LS 0..7) of the 3GPP table.

    Read from the CSV files Sionna ships (``sionna/phy/fec/ldpc/codes``), located without
    importing ``sionna`` (whose package import takes seconds).
    """
    spec = importlib.util.find_spec("sionna")
    if spec is None or spec.origin is None:
        raise RuntimeError("sionna-no-rt is not installed; it provides the 5G base graphs")
    path = Path(spec.origin).parent / "phy" / "fec" / "ldpc" / "codes" / f"5G_{base_graph}.csv"
    raw = np.genfromtxt(path, delimiter=";")[2:, :10]
    rows = raw[:, 0].copy()
    for i in range(1, len(rows)):  # the row index is only written at a row's first entry
        if np.isnan(rows[i]):
            rows[i] = rows[i - 1]
    raw[:, 0] = rows
    return raw.astype(np.int64)


def base_graph_edges(base_graph: str, i_ls: int, z: int) -> list[list[tuple[int, int]]]:
    """Per base row, sorted (column, shift) with shift = V mod Z (TS 38.212 5.3.2)."""
    table = _base_graph_table(base_graph)
    num_rows = BASE_GRAPH_SHAPE[base_graph][0]
    rows: list[list[tuple[int, int]]] = [[] for _ in range(num_rows)]
    for entry in table:
        rows[int(entry[0])].append((int(entry[1]), int(entry[2 + i_ls]) % z))
    return [sorted(r) for r in rows]


def output_interleaver(n: int, bits_per_symbol: int) -> np.ndarray:
    """TS 38.212 5.4.2.2: transmitted bit ``i + j m`` is rate-matched bit ``i n/m + j``."""
    m = bits_per_symbol
    j, i = np.meshgrid(np.arange(n // m), np.arange(m), indexing="ij")
    return (i * (n // m) + j).reshape(-1).astype(np.int32)


#: RV start numerators of k0 = floor(num * N_cb / (den * Z)) * Z (TS 38.212 Table
#: 5.4.2.1-2, I_LBRM = 0 so N_cb = N = den * Z), and the HARQ order of RVs (TS 38.214 5.1.2.1).
RV_NUMERATORS = {"bg1": (0, 17, 33, 56), "bg2": (0, 13, 25, 43)}
RV_DENOMINATOR = {"bg1": 66, "bg2": 50}
RV_ORDER = (0, 2, 3, 1)


def circular_buffer_bits(k: int, n: int) -> int:
    """Bits in the rate-matching circular buffer of the (k, n) code without the fillers
    (Sionna's compressed buffer: N_cb - (k_ldpc - k), N_cb = n_ldpc - 2Z). A code with
    ``n`` larger than this repeats bits (TS 38.212 5.4.2.1)."""
    bg = select_base_graph(k, k / n)
    z, _ = select_lifting(k, bg)
    rows, cols = BASE_GRAPH_SHAPE[bg]
    return (cols - 2) * z - ((cols - rows) * z - k)


def rv_start(code: LdpcCode, rv: int) -> int:
    """Start k0 of redundancy version ``rv`` in the compressed circular buffer.

    k0 of TS 38.212 Table 5.4.2.1-2 counts buffer positions with the filler bits; the
    compressed buffer (fillers removed, as Sionna's ``get_start_positions_comp``) starts
    at the first non-filler bit at or after k0.
    """
    if rv not in (0, 1, 2, 3):
        raise ValueError(f"redundancy version {rv!r} must be one of 0, 1, 2, 3")
    bg, z = code.base_graph, code.z
    n_cb = code.n_ldpc - 2 * z
    k0 = (RV_NUMERATORS[bg][rv] * n_cb // (RV_DENOMINATOR[bg] * z)) * z
    filler_start, filler_len = code.k - 2 * z, code.k_filler
    if filler_len <= 0 or k0 < filler_start:
        return k0
    return filler_start if k0 < filler_start + filler_len else k0 - filler_len


def rate_match_positions(code: LdpcCode, rv: int = 0, e: int | None = None) -> np.ndarray:
    """Mother-code position of every transmitted bit (TS 38.212 5.4.2.1-5.4.2.2).

    Bit selection reads the circular buffer (the mother codeword without its 2Z
    punctured systematic bits and without the fillers) from the RV's start k0
    (:func:`rv_start`), wrapping around when ``e`` exceeds the buffer (repetition);
    the output interleaver of the modulation order then permutes the ``e`` bits.

    Input
    -----
    code : LdpcCode, rv : {0, 1, 2, 3}, e : int or None (bits sent; None: ``code.n``)

    Output
    ------
    pos : [e] int32
        Transmitted (interleaved) bit ``t`` is bit ``pos[t]`` of the mother codeword
        (fillers included, so ``pos[t]`` indexes the decoder's ``n_dec`` vector when
        ``rv`` is one of ``code.rvs``). Positions repeat when e > the buffer length.
    """
    e = code.n if e is None else e
    if isinstance(e, bool) or not isinstance(e, int) or e < 1 or e % code.bits_per_symbol:
        raise ValueError(f"e {e!r} must be a positive multiple of {code.bits_per_symbol}")
    n_cb = code.n_ldpc - 2 * code.z - code.k_filler
    out_int = code.out_int if e == code.n else output_interleaver(e, code.bits_per_symbol)
    q = (out_int.astype(np.int64) + rv_start(code, rv)) % n_cb + 2 * code.z
    q[q >= code.k] += code.k_filler
    return q.astype(np.int32)


def lifted_pcm(code: LdpcCode) -> sp.csr_matrix:
    """Full lifted parity-check matrix of the mother code (for tests and inspection)."""
    z = code.z
    rows, cols = [], []
    i = np.arange(z)
    edges = base_graph_edges(code.base_graph, select_lifting(code.k, code.base_graph)[1], z)
    for r, row in enumerate(edges):
        for c, shift in row:
            rows.append(r * z + i)
            cols.append(c * z + (i + shift) % z)
    shape = BASE_GRAPH_SHAPE[code.base_graph]
    r_idx, c_idx = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(r_idx.size, dtype=np.uint8), (r_idx, c_idx)),
                         shape=(shape[0] * z, shape[1] * z))


@functools.lru_cache(maxsize=16)
def build_code(k: int, n: int, bits_per_symbol: int, rvs: tuple[int, ...] = (0,)) -> LdpcCode:
    """Construct the rate-matched code and the fast kernels' index tables.

    Follows TS 38.212 exactly as Sionna's ``LDPC5GEncoder`` does (base graph selection,
    lifting, rate matching from each RV's k0, output interleaver); tests check equality
    with it. ``rvs``: the redundancy versions that will be sent; the decoder keeps every
    base-graph row whose parity block one of them transmits.
    """
    if n % bits_per_symbol:
        raise ValueError(f"n={n} is not a multiple of bits_per_symbol={bits_per_symbol}")
    rvs = tuple(sorted(set(rvs)))
    if not rvs or any(rv not in (0, 1, 2, 3) for rv in rvs):
        raise ValueError(f"rvs {rvs!r} must be a non-empty tuple of 0, 1, 2, 3")
    bg = select_base_graph(k, k / n)
    z, i_ls = select_lifting(k, bg)
    num_rows, num_cols = BASE_GRAPH_SHAPE[bg]
    kb = num_cols - num_rows  # 22 (BG1) or 10 (BG2) systematic columns
    base = base_graph_edges(bg, i_ls, z)
    _check_extension_structure(base, kb)
    k_ldpc = kb * z
    out_int = output_interleaver(n, bits_per_symbol)
    # Kept rows: the 4 core rows plus every extension row whose parity block holds at
    # least one transmitted bit of any RV.
    probe = LdpcCode(k=k, n=n, bits_per_symbol=bits_per_symbol, base_graph=bg, z=z,
                     k_ldpc=k_ldpc, n_ldpc=num_cols * z, kb=kb, num_layers=num_rows,
                     layer_ptr=np.zeros(1, np.int32), edge_col=np.zeros(0, np.int32),
                     edge_shift=np.zeros(0, np.int32), binv_ptr=np.zeros(1, np.int32),
                     binv_idx=np.zeros(0, np.int32), out_int=out_int, rvs=rvs)
    last_tx = 1 + max(int(rate_match_positions(probe, rv).max()) for rv in rvs)
    num_layers = min(max(4, -(-last_tx // z) - kb), num_rows)
    edges = [e for r in range(num_layers) for e in base[r]]
    counts = [len(base[r]) for r in range(num_layers)]
    layer_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    binv_ptr, binv_idx = _core_inverse(bg, i_ls, z)
    return LdpcCode(
        k=k, n=n, bits_per_symbol=bits_per_symbol, base_graph=bg, z=z, k_ldpc=k_ldpc,
        n_ldpc=num_cols * z, kb=kb, num_layers=num_layers, layer_ptr=layer_ptr,
        edge_col=np.array([c for c, _ in edges], dtype=np.int32),
        edge_shift=np.array([s for _, s in edges], dtype=np.int32),
        binv_ptr=binv_ptr, binv_idx=binv_idx, out_int=out_int, rvs=rvs,
    )


@functools.lru_cache(maxsize=64)
def _core_inverse(bg: str, i_ls: int, z: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, indices) of B^-1, the inverse of the core parity block; depends only
    on the lifted graph, so every (k, n, rvs) sharing it shares one Gauss-Jordan run."""
    base = base_graph_edges(bg, i_ls, z)
    kb = BASE_GRAPH_SHAPE[bg][1] - BASE_GRAPH_SHAPE[bg][0]
    binv_csr = sp.csr_matrix(_gf2_inverse(_core_block(base, kb, z)))
    ptr, idx = binv_csr.indptr.astype(np.int32), binv_csr.indices.astype(np.int32)
    ptr.setflags(write=False)
    idx.setflags(write=False)
    return ptr, idx


def _core_block(base: list[list[tuple[int, int]]], kb: int, z: int) -> np.ndarray:
    """Dense [4Z, 4Z] uint8 core parity block B (rows 0..3, columns kb..kb+3)."""
    core = np.zeros((4 * z, 4 * z), dtype=np.uint8)
    i = np.arange(z)
    for r in range(4):
        for c, shift in base[r]:
            if kb <= c < kb + 4:
                core[r * z + i, (c - kb) * z + (i + shift) % z] = 1
    return core


def _check_extension_structure(base: list[list[tuple[int, int]]], kb: int) -> None:
    """The encoder relies on H = [A B 0; C1 C2 I] (TS 38.212 5.3.2, both base graphs)."""
    for r, row in enumerate(base):
        parity = [(c, s) for c, s in row if c >= kb + 4]
        expected = [] if r < 4 else [(kb + r, 0)]
        if parity != expected:
            raise RuntimeError(f"unexpected 5G base-graph structure in row {r}: {parity}")


def _gf2_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse over GF(2) of a square 0/1 matrix by Gauss-Jordan elimination.

    Input: [d, d] uint8. Output: [d, d] uint8. Raises RuntimeError if singular.
    """
    d = m.shape[0]
    aug = np.concatenate([m.astype(bool), np.eye(d, dtype=bool)], axis=1)
    for col in range(d):
        pivots = np.flatnonzero(aug[col:, col])
        if pivots.size == 0:
            raise RuntimeError("core parity block of the base graph is singular")
        p = col + pivots[0]
        if p != col:
            aug[[col, p]] = aug[[p, col]]
        rows = np.flatnonzero(aug[:, col])
        rows = rows[rows != col]
        aug[rows] ^= aug[col]
    return aug[:, d:].astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Encoder
# ---------------------------------------------------------------------------------------


class FastLdpcEncoder:
    """Compiled 5G LDPC encoder, bit-exact with Sionna's ``LDPC5GEncoder`` (any rv).

    Input
    -----
    u : [N, k] uint8   information bits (0/1)
    rv : int           redundancy version, one of ``code.rvs`` (default 0)

    Output
    ------
    c : [N, n] uint8   rate-matched (from the RV's k0, wrapping), interleaved codeword bits
    """

    def __init__(self, code: LdpcCode) -> None:
        self.code = code
        self.positions = rate_match_positions(code)
        self._rv_positions = {rv: rate_match_positions(code, rv) for rv in code.rvs}

    def __call__(self, u: np.ndarray, rv: int = 0) -> np.ndarray:
        c = self.code
        if u.ndim != 2 or u.shape[1] != c.k:
            raise ValueError(f"encoder input shape {u.shape} is not [N, {c.k}]")
        if rv not in self._rv_positions:
            raise ValueError(f"rv {rv!r} not among the code's redundancy versions {c.rvs}")
        out = np.empty((u.shape[0], c.n), dtype=np.uint8)
        _encode_batch(
            np.ascontiguousarray(u, dtype=np.uint8), c.k, c.k_ldpc, c.z, c.kb, c.num_layers,
            c.layer_ptr, c.edge_col, c.edge_shift, c.binv_ptr, c.binv_idx,
            self._rv_positions[rv], out,
        )
        return out


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _xor_shifted(dst: np.ndarray, d0: int, src: np.ndarray, s0: int, z: int, s: int) -> None:
    """dst[d0+i] ^= src[s0 + (i+s) % z] for i < z, as two contiguous loops.

    The loops index views with the bare counter: an offset index (``d0 + i``) may be
    negative as far as numba knows, and its wraparound check stops LLVM from
    vectorising (measured: 2 cycles per byte before, 8x faster after).
    """
    _xor_into(dst[d0 : d0 + z - s], src[s0 + s : s0 + z])
    _xor_into(dst[d0 + z - s : d0 + z], src[s0 : s0 + s])


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _xor_into(dst, src):
    for i in range(dst.shape[0]):
        dst[i] ^= src[i]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _encode_batch(u, k, k_ldpc, z, kb, num_layers, layer_ptr, edge_col, edge_shift,
                  binv_ptr, binv_idx, positions, out):
    """Encode each row of u into out (RU method: p_a = B^-1 A s, p_b = C1 s + C2 p_a);
    ``out[b, t] = cw[positions[t]]`` (rate matching + interleaving as one gather).

    Scratch (codeword, lambda, one parity block) is allocated once per call; each
    extension parity block is accumulated in its own buffer so the XOR loops read and
    write different arrays (LLVM vectorises them without overlap checks on cw).
    """
    n = out.shape[1]
    n_c = (kb + num_layers) * z
    cw = np.zeros(n_c, dtype=np.uint8)  # filler bits k..k_ldpc stay 0
    lam = np.empty(4 * z, dtype=np.uint8)
    acc = np.empty(z, dtype=np.uint8)
    for b in range(u.shape[0]):
        cw[:k] = u[b]
        lam[:] = 0
        for r in range(4):  # lambda = A s over the systematic columns
            for e in range(layer_ptr[r], layer_ptr[r + 1]):
                if edge_col[e] < kb:
                    _xor_shifted(lam, r * z, cw, edge_col[e] * z, z, edge_shift[e])
        for q in range(4 * z):  # core parity p_a = B^-1 lambda
            x = np.uint8(0)
            for p in range(binv_ptr[q], binv_ptr[q + 1]):
                x ^= lam[binv_idx[p]]
            cw[k_ldpc + q] = x
        for r in range(4, num_layers):  # extension parity p_b = C1 s + C2 p_a
            acc[:] = 0
            for e in range(layer_ptr[r], layer_ptr[r + 1]):
                if edge_col[e] < kb + 4:
                    _xor_shifted(acc, 0, cw, edge_col[e] * z, z, edge_shift[e])
            cw[(kb + r) * z : (kb + r + 1) * z] = acc
        for t in range(n):  # rate matching + interleaving
            out[b, t] = cw[positions[t]]


# ---------------------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------------------


class FastLdpcDecoder:
    """Layered offset min-sum decoder with per-codeword early termination (numba).

    ::

        llr [N, n] ──recover──► l_ch [N, n_dec] ──decode_llrs──► u_hat [N, k], iterations [N]

    Parameters
    ----------
    code : LdpcCode
    num_iter : int
        Maximum iterations (one iteration = every layer once).
    offset : float
        Min-sum offset beta (0.5 = Sionna's "offset-minsum", 0 = plain "minsum").
    llr_max : float
        Clipping of channel LLRs and v2c messages (Sionna's ``llr_max``).

    Input
    -----
    llr : [N, n] float32   logits log p(1)/p(0), transmitted (interleaved) order

    Output
    ------
    u_hat : [N, k] uint8       hard-decided information bits
    iterations : [N] int32     iterations run (num_iter when no zero syndrome was reached)
    """

    def __init__(self, code: LdpcCode, num_iter: int = 20, offset: float = 0.5,
                 llr_max: float = LLR_MAX) -> None:
        self.code = code
        self.num_iter = int(num_iter)
        self.offset = float(offset)
        self.llr_max = float(llr_max)
        self.positions = rate_match_positions(code)
        self._rv_positions = {rv: rate_match_positions(code, rv) for rv in code.rvs}
        #: rv -> True when every mother-code bit is sent at most once (no repetition).
        self._distinct = {rv: np.unique(p).size == p.size for rv, p in self._rv_positions.items()}

    def __call__(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.decode_llrs(self.recover(llr))

    def recover(self, llr: np.ndarray, out: np.ndarray | None = None, rv: int = 0,
                clip: bool = True) -> np.ndarray:
        """Rate recovery: transmitted logits -> internal channel LLRs of the mother code.

        Input
        -----
        llr : [N, n] float32   logits log p(1)/p(0), transmitted order
        out : [N, n_dec] float32 or None
            Internal LLRs to add to (HARQ combining); None starts from zeros.
        rv : int               redundancy version ``llr`` was sent with (one of code.rvs)
        clip : bool
            True: clip to +-llr_max and set the fillers (ready for ``decode_llrs``).
            False: leave ``out`` a raw sum (a HARQ accumulator; see :meth:`finish`).

        Output
        ------
        l_ch : [N, n_dec] float32
            ``log p(0)/p(1)`` per mother-code bit, summed over every received copy
            (repetitions and transmissions); with ``clip``: clipped to +-llr_max,
            punctured and untransmitted bits 0, fillers +llr_max.
        """
        c = self.code
        if llr.ndim != 2 or llr.shape[1] != c.n:
            raise ValueError(f"decoder input shape {llr.shape} is not [N, {c.n}]")
        if rv not in self._rv_positions:
            raise ValueError(f"rv {rv!r} not among the code's redundancy versions {c.rvs}")
        l_ch = np.zeros((llr.shape[0], c.n_dec), dtype=np.float32) if out is None else out
        pos = self._rv_positions[rv]
        if self._distinct[rv]:
            l_ch[:, pos] -= llr  # distinct positions: plain fancy indexing
        else:  # repetition: copies of one bit add up
            _scatter_sub(l_ch, pos, np.ascontiguousarray(llr, dtype=np.float32))
        return self.finish(l_ch, out=l_ch) if clip else l_ch

    def finish(self, acc: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Clip a raw LLR sum to +-llr_max and set the fillers: [N, n_dec] -> [N, n_dec]
        (a new array unless ``out`` is given)."""
        l_ch = np.clip(acc, -self.llr_max, self.llr_max, out=out)
        l_ch[:, self.code.k:self.code.k_ldpc] = self.llr_max  # filler bits are known zeros
        return l_ch

    def decode_llrs(self, l_ch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decode internal channel LLRs (the output of :meth:`recover`).

        Input
        -----
        l_ch : [N, n_dec] float32   log p(0)/p(1) per mother-code bit

        Output
        ------
        u_hat : [N, k] uint8, iterations : [N] int32
        """
        c = self.code
        if l_ch.ndim != 2 or l_ch.shape[1] != c.n_dec:
            raise ValueError(f"decoder input shape {l_ch.shape} is not [N, {c.n_dec}]")
        num = l_ch.shape[0]
        u_hat = np.empty((num, c.k), dtype=np.uint8)
        iters = np.empty(num, dtype=np.int32)
        _decode_batch(
            np.ascontiguousarray(l_ch, dtype=np.float32), c.k, c.z, c.n_dec, c.num_layers,
            c.layer_ptr, c.edge_col, c.edge_shift, self.num_iter, np.float32(self.offset),
            np.float32(self.llr_max), u_hat, iters,
        )
        return u_hat, iters


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _scatter_sub(l_ch, pos, llr):
    """l_ch[b, pos[t]] -= llr[b, t], accumulating repeated positions."""
    for b in range(llr.shape[0]):
        for t in range(llr.shape[1]):
            l_ch[b, pos[t]] -= llr[b, t]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _load_doubled(l_ch, z, L):
    """Copy one codeword's internal LLRs into the *doubled* APP layout.

    Column block c occupies ``L[2cz : 2cz + 2z]`` and holds its z values twice, so the
    cyclically shifted window a check row reads, ``(i + s) % z`` for i < z, is the
    contiguous slice ``[2cz + s, 2cz + s + z)``.
    """
    for c in range(l_ch.shape[0] // z):
        for i in range(z):
            v = l_ch[c * z + i]
            L[2 * c * z + i] = v
            L[2 * c * z + z + i] = v


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=True)
def _layer_update(L, R, T, m1, m2, idx, sg, e0, e1, edge_col, edge_shift, z, offset, llr_max):
    """One layer (Z parallel checks) of layered min-sum, vectorised over the Z rows.

    Row i of the layer reads APP ``(i + s) % z`` of each edge's column block: one
    contiguous window of the doubled layout (see ``_load_doubled``); after the update the
    twin copy of the window is refreshed with two block copies. Inner loops index views
    with the bare counter and load unconditionally, which lets LLVM vectorise them.
    The v2c pass takes two edges at a time (``_v2c2``): the running min/argmin/sign
    state is loaded and stored once per pair, not per edge (the loop is store-bound;
    -15% time, bit-identical since the updates run in the same order). Four edges per
    pass stop LLVM from vectorising (too many runtime alias checks) and run 2x slower.
    T keeps the exact extrinsic sum L - R (so the APP stays llr + sum of c2v); only the
    magnitude entering the check is clipped to llr_max, as Sionna's vn_update_sum.
    """
    m1[:] = np.float32(1e30)
    m2[:] = np.float32(1e30)
    idx[:] = -1
    sg[:] = 1.0  # product of the signs of the incoming messages (+1/-1)
    deg = e1 - e0
    j = 0
    while j + 2 <= deg:  # two edges per pass: the running state is loaded/stored once
        e = e0 + j
        w0 = 2 * edge_col[e] * z + edge_shift[e]
        w1 = 2 * edge_col[e + 1] * z + edge_shift[e + 1]
        _v2c2(T[j], T[j + 1], L[w0 : w0 + z], L[w1 : w1 + z], R[e], R[e + 1], m1, m2, idx, sg,
              np.int32(j), llr_max)
        j += 2
    if j < deg:
        e = e0 + j
        w0 = 2 * edge_col[e] * z + edge_shift[e]
        _v2c(T[j], L[w0 : w0 + z], R[e], m1, m2, idx, sg, np.int32(j), llr_max)
    zero = np.float32(0.0)
    for i in range(z):  # offset applied once per row: max(min - beta, 0)
        m1[i] = max(m1[i] - offset, zero)
        m2[i] = max(m2[i] - offset, zero)
    for j in range(deg):
        e = e0 + j
        b0 = 2 * edge_col[e] * z
        s = edge_shift[e]
        _c2v(T[j], R[e], L[b0 + s : b0 + s + z], m1, m2, idx, sg, np.int32(j))
        _copy(L[b0 + s + z : b0 + 2 * z], L[b0 + s : b0 + z])  # refresh the twin copy
        _copy(L[b0 : b0 + s], L[b0 + z : b0 + z + s])


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=True, inline="always")
def _v2c2(t0, t1, app0, app1, r0, r1, m1, m2, idx, sg, j, llr_max):
    """``_v2c`` for edges j and j + 1 in one pass (same updates, same order)."""
    for i in range(t0.shape[0]):
        v0 = app0[i] - r0[i]
        v1 = app1[i] - r1[i]
        t0[i] = v0
        t1[i] = v1
        a0 = min(abs(v0), llr_max)
        a1 = min(abs(v1), llr_max)
        o1 = m1[i]
        o2 = m2[i]
        oi = idx[i]
        sgn = sg[i]
        o2 = min(o2, max(o1, a0))
        oi = j if a0 < o1 else oi
        o1 = min(o1, a0)
        sgn = -sgn if v0 < 0 else sgn
        m2[i] = min(o2, max(o1, a1))
        idx[i] = j + 1 if a1 < o1 else oi
        m1[i] = min(o1, a1)
        sg[i] = -sgn if v1 < 0 else sgn


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _copy(dst, src):
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=True, inline="always")
def _v2c(t, app, r, m1, m2, idx, sg, j, llr_max):
    """t = APP - old c2v; running min, second min, argmin and sign product of |t|."""
    for i in range(t.shape[0]):
        v = app[i] - r[i]
        t[i] = v
        a = min(abs(v), llr_max)
        o1 = m1[i]
        o2 = m2[i]
        oi = idx[i]
        sgn = sg[i]
        m2[i] = min(o2, max(o1, a))
        idx[i] = j if a < o1 else oi
        m1[i] = min(o1, a)
        sg[i] = -sgn if v < 0 else sgn  # sign(0) = +1, as Sionna


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=True, inline="always")
def _c2v(t, r, app, m1, m2, idx, sg, j):
    """New c2v = extrinsic sign * offset extrinsic min; APP = v2c + new c2v."""
    for i in range(t.shape[0]):
        a1 = m1[i]
        a2 = m2[i]
        v = t[i]
        mag = a2 if idx[i] == j else a1
        ms = mag * sg[i]
        new = -ms if v < 0 else ms
        r[i] = new
        app[i] = v + new


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=True)
def _syndrome_is_zero(L, par, num_layers, layer_ptr, edge_col, edge_shift, z):
    """True when the hard decisions (APP < 0 -> 1) satisfy every kept parity check."""
    for layer in range(num_layers):
        par[:] = 1.0
        for e in range(layer_ptr[layer], layer_ptr[layer + 1]):
            w0 = 2 * edge_col[e] * z + edge_shift[e]
            _sign_prod(par, L[w0 : w0 + z])
        worst = np.float32(1.0)
        for i in range(z):
            worst = min(worst, par[i])
        if worst < 0:
            return False
    return True


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=True, inline="always")
def _sign_prod(par, v):
    for i in range(par.shape[0]):
        p = par[i]
        par[i] = -p if v[i] < 0 else p


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _decode_batch(l_ch, k, z, n_dec, num_layers, layer_ptr, edge_col,
                  edge_shift, num_iter, offset, llr_max, u_hat, iters):
    """Decode each row of l_ch (internal LLRs) into u_hat; iters[b] = iterations run.

    The decoder state (APP L, c2v messages R, scratch) is allocated once per call and
    reused for every codeword: R is zeroed and L reloaded per codeword, so the codewords
    stay independent; no allocation (and no page faults) inside the loop.
    """
    num_edges = layer_ptr[num_layers]
    dmax = 0
    for layer in range(num_layers):
        dmax = max(dmax, layer_ptr[layer + 1] - layer_ptr[layer])
    L = np.empty(2 * n_dec, dtype=np.float32)
    R = np.empty((num_edges, z), dtype=np.float32)
    T = np.empty((dmax, z), dtype=np.float32)
    m1 = np.empty(z, dtype=np.float32)
    m2 = np.empty(z, dtype=np.float32)
    idx = np.empty(z, dtype=np.int32)
    sg = np.empty(z, dtype=np.float32)
    for b in range(l_ch.shape[0]):
        R[:] = 0.0
        _load_doubled(l_ch[b], z, L)
        it = 0
        while it < num_iter:
            for layer in range(num_layers):
                _layer_update(L, R, T, m1, m2, idx, sg, layer_ptr[layer], layer_ptr[layer + 1],
                              edge_col, edge_shift, z, offset, llr_max)
            it += 1
            if _syndrome_is_zero(L, sg, num_layers, layer_ptr, edge_col, edge_shift, z):
                break
        iters[b] = it
        for t in range(k):
            u_hat[b, t] = np.uint8(L[2 * (t // z) * z + t % z] < 0)
