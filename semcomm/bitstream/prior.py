"""Static entropy models: a symbol frequency table (:class:`Prior`) and a uniform scalar
quantizer for float side information (:class:`ScalarQuantizer`).

A prior is learned once from training data (``Prior.fit``), stored with the model's
checkpoint (``to_state`` / ``from_state``) and used unchanged by transmitter and
receiver, so it costs no bits on the link. It is smoothed (additive pseudo-counts) so
that every symbol has a nonzero probability and any index can be coded.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import constriction
import numpy as np
import torch

#: Largest alphabet we code: constriction's default range coder has 24-bit probability
#: precision, and 2**16 symbols leaves every symbol at least 2**-24 of headroom with
#: smoothing. Covers codebooks up to 16384 and 16-bit float levels.
MAX_SYMBOLS = 2**16
_STATE_FORMAT = 1


def as_numpy(x: Any) -> np.ndarray:
    """torch.Tensor (any device) or array-like -> NumPy array (no copy when possible)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_num_symbols(num_symbols: int) -> int:
    """Validate an alphabet size K and return it as int."""
    if isinstance(num_symbols, bool) or not isinstance(num_symbols, int | np.integer):
        raise ValueError(f"num_symbols K must be an int, got {num_symbols!r}")
    if not 2 <= int(num_symbols) <= MAX_SYMBOLS:
        raise ValueError(f"num_symbols K={num_symbols} outside the allowed range "
                         f"[2, {MAX_SYMBOLS}]")
    return int(num_symbols)


@dataclass(frozen=True, eq=False)
class Prior:
    """A static categorical model over the alphabet {0, ..., K-1}.

    Attributes
    ----------
    probs : [K] float64
        Probabilities, all > 0 (a read-only copy is kept). ``fit`` and ``uniform``
        normalise them; a table given directly is used as given (the coder rescales it),
        never renormalised here, so ``to_state``/``from_state`` round-trips bit-exactly.

    Two priors are equal when their tables are identical; ``fingerprint`` (CRC-32 of
    the table) goes into every packet checksum, so a receiver holding a different prior
    rejects the packets instead of decoding garbage.
    """

    probs: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        p = np.array(as_numpy(self.probs), dtype=np.float64, copy=True)
        if p.ndim != 1:
            raise ValueError(f"prior probs must be a 1-D table [K], got shape {p.shape}")
        check_num_symbols(p.shape[0])
        if not np.all(np.isfinite(p)) or np.any(p <= 0):
            raise ValueError("prior probs must be finite and > 0 for every symbol "
                             f"(min {p.min() if p.size else 'n/a'}); fit with smoothing > 0")
        p.setflags(write=False)
        object.__setattr__(self, "probs", p)

    # ----------------------------------------------------------------------- builders
    @classmethod
    def fit(cls, samples: Any, num_symbols: int, smoothing: float = 0.5) -> Prior:
        """Learn a prior from training indices.

        Input
        -----
        samples : array-like or torch.Tensor of ints, any shape
            Observed symbols in [0, K) (e.g. ``indices[mask]`` over a training set).
        num_symbols : int
            Alphabet size K in [2, 65536].
        smoothing : float > 0
            Additive pseudo-count per symbol (0.5 = Krichevsky-Trofimov / Jeffreys):
            p(k) = (count(k) + smoothing) / (N + K * smoothing).
        """
        k = check_num_symbols(num_symbols)
        if not (isinstance(smoothing, int | float) and math.isfinite(smoothing) and smoothing > 0):
            raise ValueError(f"smoothing {smoothing!r} must be a finite number > 0 "
                             "(it keeps every symbol codable)")
        x = as_numpy(samples).ravel()
        if x.size and not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"samples must be integers, got dtype {x.dtype}")
        x = x.astype(np.int64, copy=False)
        if x.size and (x.min() < 0 or x.max() >= k):
            raise ValueError(f"samples must lie in [0, {k}), found min {x.min()} max {x.max()}")
        counts = np.bincount(x, minlength=k).astype(np.float64) + float(smoothing)
        return cls(counts / counts.sum())

    @classmethod
    def uniform(cls, num_symbols: int) -> Prior:
        """Equiprobable prior: log2(K) bits per symbol."""
        k = check_num_symbols(num_symbols)
        return cls(np.full(k, 1.0 / k))

    # ---------------------------------------------------------------- checkpointing
    def to_state(self) -> dict[str, torch.Tensor | int]:
        """State for a checkpoint: ``{"format": 1, "num_symbols": K, "probs": [K] float64}``."""
        return {"format": _STATE_FORMAT, "num_symbols": self.num_symbols,
                "probs": torch.from_numpy(self.probs.copy())}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Prior:
        """Inverse of :meth:`to_state`; the table round-trips bit-exactly."""
        if not isinstance(state, dict) or not {"format", "num_symbols", "probs"} <= set(state):
            raise ValueError("prior state must be a dict with keys format, num_symbols, probs; "
                             f"got {sorted(state) if isinstance(state, dict) else type(state)}")
        if int(state["format"]) != _STATE_FORMAT:
            raise ValueError(f"prior state format {state['format']} unknown "
                             f"(allowed: {_STATE_FORMAT})")
        prior = cls(as_numpy(state["probs"]))
        if prior.num_symbols != int(state["num_symbols"]):
            raise ValueError(f"prior state says num_symbols={state['num_symbols']} but its table "
                             f"has {prior.num_symbols} entries")
        return prior

    # -------------------------------------------------------------------- measures
    @property
    def num_symbols(self) -> int:
        """Alphabet size K."""
        return int(self.probs.shape[0])

    def entropy_bits(self) -> float:
        """Entropy H(p) in bits per symbol."""
        return float(-(self._normalized * np.log2(self._normalized)).sum())

    def information_bits(self, symbols: Any) -> float:
        """Total information content sum_i -log2 p(x_i) in bits (the ideal code length)."""
        x = as_numpy(symbols).ravel().astype(np.int64)
        return float(self._costs[x].sum())

    def costs_bits(self, symbols: np.ndarray) -> np.ndarray:
        """Per-symbol ideal code length -log2 p(x) [same shape as symbols] float64."""
        return self._costs[symbols]

    @cached_property
    def _normalized(self) -> np.ndarray:
        return self.probs / self.probs.sum()

    @cached_property
    def _costs(self) -> np.ndarray:
        return -np.log2(self._normalized)

    @cached_property
    def model(self) -> Any:
        """The constriction ``Categorical`` model (built once, deterministic)."""
        return constriction.stream.model.Categorical(self.probs, perfect=False)

    @cached_property
    def fingerprint(self) -> int:
        """CRC-32 of the probability table (identifies the prior in packet checksums)."""
        return zlib.crc32(self.probs.tobytes())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prior) and np.array_equal(self.probs, other.probs)

    def __hash__(self) -> int:
        return self.fingerprint


@dataclass(frozen=True)
class ScalarQuantizer:
    """Uniform scalar quantizer with 2**bits levels on [lo, hi] (both ends are levels).

    level = round((clip(v, lo, hi) - lo) / step),  v_hat = lo + level * step,
    step = (hi - lo) / (2**bits - 1). Values outside [lo, hi] are clipped; inside, the
    error is at most step / 2.
    """

    lo: float
    hi: float
    bits: int

    def __post_init__(self) -> None:
        bits = self.bits
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
            raise ValueError(f"quantizer bits={self.bits!r} outside the allowed range [1, 16]")
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(f"quantizer range [lo={self.lo}, hi={self.hi}] must be finite "
                             "with lo < hi")

    @property
    def levels(self) -> int:
        """Number of levels L = 2**bits (the alphabet size of the level prior)."""
        return 1 << self.bits

    @property
    def step(self) -> float:
        """Distance between levels, in the units of the values."""
        return (self.hi - self.lo) / (self.levels - 1)

    def quantize(self, values: Any) -> np.ndarray:
        """values [...] float -> levels [...] int64 in [0, L)."""
        v = np.clip(as_numpy(values).astype(np.float64), self.lo, self.hi)
        return np.clip(np.rint((v - self.lo) / self.step), 0, self.levels - 1).astype(np.int64)

    def dequantize(self, levels: np.ndarray) -> np.ndarray:
        """levels [...] int -> values [...] float32."""
        return (self.lo + np.asarray(levels, dtype=np.float64) * self.step).astype(np.float32)

    def key(self) -> bytes:
        """Canonical bytes describing the quantizer (part of the spec fingerprint)."""
        return struct.pack(">ddB", self.lo, self.hi, self.bits)
