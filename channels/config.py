"""``LinkConfig``: the typed, validated description of one digital link.

Validation happens in ``__post_init__`` (before any compute) and resolves the code
parameters, so after construction ``k``, ``n`` and ``code_rate`` always hold the code
that will really be used (``code_rate == k / n`` for LDPC).

Code-size rules (per-block CRC-24B, see ``channels.segmentation``)
------------------------------------------------------------------
* ``k`` (bits per code block, CRC included) is a multiple of 8 so every block carries
  ``(k - 24) / 8`` whole payload bytes; 32 <= k <= 8448 (5G BG1 maximum).
* ``n`` is a multiple of the bits per symbol (whole symbols, TS 38.212 5.4.2.2).
* 0.2 <= k / n <= 0.95 and the 5G base-graph limits (TS 38.212 7.2.2 selection,
  BG2 only up to k = 3840, BG1 only for rates >= 1/3).
* Only ``code_rate`` given: ``k = 4096`` (``3824`` for rates below 1/3, the largest
  multiple of 8 that stays on BG2) and ``n`` the smallest multiple of bits per symbol
  with ``k / n <= code_rate``. ``code_rate`` + ``k``: ``n`` derived the same way.
  ``k`` + ``n``: ``code_rate = k / n``. All three: must agree.
* ``coding="uncoded"``: blocks of ``k`` bits (default 4096) with the same CRC, no FEC;
  ``n = k`` and ``code_rate = 1``.

Unequal error protection (``priority``)
---------------------------------------
A codec may mark the leading bytes of its payload as its most important ones
(``Payload.priority_bytes``: SQ-GAN's semantic-map packets, ISC's base layer). When the
link has a ``priority`` config, those bytes travel in code blocks of their own with that
config's modulation and code (e.g. QPSK, rate 1/3) and the rest with the main one; a
payload that marks none is sent exactly as without it. ``priority`` takes the code
settings of a link (``modulation``, ``coding``, ``code_rate``, ``k``, ``n``, resolved with
the rules above and the same defaults) and inherits everything else (channel, decoder,
iterations, demapping, ``block_symbols``, device, scrambling, HARQ) from the main link;
it cannot nest.

MCS tables, repetition, scrambling, HARQ
----------------------------------------
* ``mcs_table`` (``qam64 | qam256 | qam64LowSE``, TS 38.214 Tables 5.1.3.1-1/2/3) with
  ``mcs_index`` sets ``modulation`` and the target rate (``channels.mcs``); the code is
  then resolved as for that ``code_rate``. ``modulation``/``code_rate`` may be repeated
  only with the table's values.
* Rates below the mother-code rate of the selected base graph (BG2 about 1/5, BG1 1/3)
  repeat the circular buffer (TS 38.212 5.4.2.1); the fast decoder adds the copies'
  LLRs. Sionna 2.2 refuses repetition, so ``decoder="sionna"`` needs n <= the buffer.
* Every code block is scrambled before modulation with the Gold sequence of
  ``c_init = n_rnti 2^15 + n_id`` (TS 38.211 7.3.1.1, codeword 0); ``scrambling=False``
  is only for ablations (BLER then depends on the payload content).
* ``harq = {max_transmissions: N, combining: chase | ir}``: a block whose CRC fails is
  sent again, up to N transmissions in all, each over a fresh channel realisation; chase
  resends rv 0, ir the redundancy versions 0, 2, 3, 1 (TS 38.214 5.1.2.1); the receiver
  adds the LLRs of every copy on the mother code before decoding.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from channels.ldpc import RV_ORDER, circular_buffer_bits, select_base_graph
from channels.mcs import MCS_TABLES, decode_mcs
from channels.scrambling import N_ID_MAX, N_RNTI_MAX

#: modulation name -> bits per complex symbol (Gray QAM of TS 38.211 5.1).
MODULATIONS: dict[str, int] = {"qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}
CODINGS = ("ldpc", "uncoded")
DECODERS = ("fast", "sionna", "gpu")
CHANNELS = ("awgn", "rayleigh-block", "rayleigh-fast")
DEMAPPINGS = ("app", "maxlog")
#: check-node rules each decoder implements.
CN_UPDATES = {"fast": ("offset-minsum", "minsum"), "gpu": ("offset-minsum", "minsum"),
              "sionna": ("offset-minsum", "minsum", "boxplus-phi", "boxplus")}
CN_SCHEDULES = {"fast": ("layered",), "gpu": ("layered",),
                "sionna": ("layered", "flooding")}

CRC_BITS = 24  # CRC24B, TS 38.212 5.1
K_MIN, K_MAX = 32, 8448  # one payload byte + CRC; BG1 maximum (TS 38.212 5.2.2)
# Lowest target rate of TS 38.214 (30/1024, Table 5.1.3.1-3) with room for whole-symbol
# rounding; below about 1/5 the circular buffer repeats. Highest: TS 38.212 5.4.2.1.
RATE_MIN, RATE_MAX = 0.025, 0.95
HARQ_COMBINING = ("chase", "ir")
MAX_TRANSMISSIONS = 16
DEFAULT_K, DEFAULT_K_LOW_RATE = 4096, 3824
MAX_ITERATIONS = 200


@dataclass(frozen=True)
class HarqConfig:
    """HARQ with soft combining (TS 38.321 5.3.2, RVs of TS 38.212 5.4.2.1).

    Attributes
    ----------
    max_transmissions : int in [1, 16]
        Transmissions of a code block at most (1 = no retransmission).
    combining : {"chase", "ir"}
        ``chase``: every transmission is rv 0. ``ir`` (incremental redundancy): the
        redundancy versions 0, 2, 3, 1, 0, ... of TS 38.214 5.1.2.1.
    """

    max_transmissions: int = 2
    combining: str = "chase"

    def __post_init__(self) -> None:
        _int_in("harq.max_transmissions", self.max_transmissions, 1, MAX_TRANSMISSIONS)
        _choice("harq.combining", self.combining, HARQ_COMBINING)

    @property
    def rvs(self) -> tuple[int, ...]:
        """Redundancy version of each transmission, in order."""
        if self.combining == "chase":
            return (0,) * self.max_transmissions
        return tuple(RV_ORDER[t % 4] for t in range(self.max_transmissions))


@dataclass(frozen=True)
class LinkConfig:
    """One link: modulation, code, decoder, channel, device.

    Attributes
    ----------
    modulation : {"qpsk", "16qam", "64qam", "256qam"} | None
        None: from the MCS table, else "16qam".
    coding : {"ldpc", "uncoded"}
    code_rate : float | None
        LDPC rate k / n in [0.025, 0.95] (repetition below about 1/5); exclusive with
        giving both ``k`` and ``n`` (unless all three agree). Default 0.5 when nothing
        (and no MCS) is given; after construction the resolved k / n.
    mcs_table : {"qam64", "qam256", "qam64LowSE"} | None
        TS 38.214 MCS table; with ``mcs_index`` it sets modulation and target rate.
    mcs_index : int | None
        Row of ``mcs_table`` (0..28, 0..27 for qam256).
    k, n : int | None
        Information bits (CRC included) and coded bits per code block.
    bp_iterations : int
        Maximum decoder iterations, 1..200 (the fast decoder stops early on a zero
        syndrome; Sionna's always runs them all).
    decoder : {"fast", "sionna"}
        ``fast``: compiled layered min-sum (numba, CPU). ``sionna``: Sionna's
        ``LDPC5GDecoder`` with Sionna's mapper/demapper (eager PyTorch, cpu or cuda).
        ``gpu``: the fast decoder's algorithm as a Triton kernel, the whole chain on
        ``device`` (cuda; cpu runs Triton's interpreter, for tests), see channels.gpu.
    cn_update : str
        Check-node rule: "offset-minsum" (beta 0.5) or "minsum" for both decoders;
        "boxplus-phi" and "boxplus" (exact BP) with ``decoder="sionna"`` only.
    cn_schedule : {"layered", "flooding"}
        Layered (row-by-row) or flooding; the fast decoder is layered only.
    demapping : {"app", "maxlog"}
        Soft demapper: exact a-posteriori LLRs or the max-log approximation.
    channel : {"awgn", "rayleigh-block", "rayleigh-fast"}
        Rayleigh gains h ~ CN(0, 1), perfect CSI at the receiver.
    block_symbols : int | None
        ``rayleigh-block`` coherence length in symbols along each payload's symbol
        stream; None = one gain per code block (codeword).
    device : str
        "cpu", "cuda" or "cuda:N" (cuda only with ``decoder="sionna"`` or ``"gpu"``).
    priority : LinkConfig | dict | None
        Modulation and code of the bytes a codec marks as priority (see above); a dict
        is resolved against this config. None: every byte on the main config.
    scrambling : bool
        Scramble every code block (TS 38.211 7.3.1.1); False only for ablations.
    n_rnti, n_id : int
        Scrambling identities, [0, 65535] and [0, 1023] (Sionna's defaults, 1 and 1).
    harq : HarqConfig | dict | None
        Retransmissions with soft combining (see above); None: one transmission.
    """

    modulation: str | None = None
    coding: str = "ldpc"
    code_rate: float | None = None
    k: int | None = None
    n: int | None = None
    bp_iterations: int = 20
    decoder: str = "fast"
    cn_update: str = "offset-minsum"
    cn_schedule: str = "layered"
    demapping: str = "app"
    channel: str = "awgn"
    block_symbols: int | None = None
    device: str = "cpu"
    priority: LinkConfig | None = None
    mcs_table: str | None = None
    mcs_index: int | None = None
    scrambling: bool = True
    n_rnti: int = 1
    n_id: int = 1
    harq: HarqConfig | None = None

    def __post_init__(self) -> None:
        _normalise_numbers(self)
        _apply_mcs(self)
        _choice("modulation", self.modulation, tuple(MODULATIONS))
        _choice("coding", self.coding, CODINGS)
        _choice("decoder", self.decoder, DECODERS)
        _choice("demapping", self.demapping, DEMAPPINGS)
        _choice("channel", self.channel, CHANNELS)
        _choice(f"cn_update (decoder={self.decoder!r})", self.cn_update,
                CN_UPDATES[self.decoder])
        _choice(f"cn_schedule (decoder={self.decoder!r})", self.cn_schedule,
                CN_SCHEDULES[self.decoder])
        _int_in("bp_iterations", self.bp_iterations, 1, MAX_ITERATIONS)
        if self.block_symbols is not None:
            _int_in("block_symbols", self.block_symbols, 1, 2**40)
            if self.channel != "rayleigh-block":
                raise ValueError(f"block_symbols={self.block_symbols} is only used with "
                                 f"channel='rayleigh-block', got channel={self.channel!r}")
        if not re.fullmatch(r"cpu|cuda(:\d+)?", str(self.device)):
            raise ValueError(f"device {self.device!r} not one of 'cpu', 'cuda', 'cuda:N'")
        if self.device == "cuda":  # Sionna wants an index ("Invalid device: cuda")
            object.__setattr__(self, "device", "cuda:0")
        if self.device != "cpu" and self.decoder == "fast":
            raise ValueError(f"device {self.device!r} needs decoder='sionna' or 'gpu'; the fast "
                             "decoder runs on the CPU (device='cpu')")
        if not isinstance(self.scrambling, bool):
            raise ValueError(f"scrambling {self.scrambling!r} must be true or false")
        _int_in("n_rnti", self.n_rnti, 0, N_RNTI_MAX)
        _int_in("n_id", self.n_id, 0, N_ID_MAX)
        k, n, rate = (_resolve_uncoded(self) if self.coding == "uncoded"
                      else _resolve_ldpc(self.code_rate, self.k, self.n, self.bits_per_symbol))
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "code_rate", rate)
        _resolve_harq(self)
        if self.decoder == "sionna" and self.coding == "ldpc":
            _check_sionna_code(k, n)
        if self.priority is not None:
            object.__setattr__(self, "priority", _priority_config(self, self.priority))

    @property
    def bits_per_symbol(self) -> int:
        """Coded bits per complex symbol."""
        assert self.modulation is not None  # resolved in __post_init__
        return MODULATIONS[self.modulation]

    @property
    def rvs(self) -> tuple[int, ...]:
        """Redundancy version of each transmission ((0,) without HARQ)."""
        return (0,) if self.harq is None else self.harq.rvs

    @property
    def max_transmissions(self) -> int:
        """Transmissions of a code block at most (1 without HARQ)."""
        return 1 if self.harq is None else self.harq.max_transmissions

    @property
    def block_payload_bytes(self) -> int:
        """Payload bytes carried by one code block: (k - 24) / 8."""
        assert self.k is not None  # resolved in __post_init__
        return (self.k - CRC_BITS) // 8

    @property
    def symbols_per_block(self) -> int:
        """Complex symbols (channel uses) per code block."""
        assert self.n is not None
        return -(-self.n // self.bits_per_symbol)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the resolved fields (round-trips through ``from_dict``)."""
        d = asdict(self)
        if self.priority is not None:
            d["priority"] = self.priority._code()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "link config") -> LinkConfig:
        """Build from a mapping; unknown keys raise ValueError naming the nearest key."""
        valid = [f.name for f in fields(cls)]
        for key in d:
            if key not in valid:
                near = difflib.get_close_matches(str(key), valid, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ValueError(f"{where}: unknown key {key!r}{hint} "
                                 f"(valid keys: {', '.join(valid)})")
        return cls(**d)

    def describe(self) -> str:
        """Short label: ``16qam-ldpc0.5-awgn``, ``+prio-qpsk-ldpc0.333`` with a priority,
        ``-harq2chase`` with HARQ, ``-mcs:qam64:5`` with an MCS row."""
        label = f"{self.modulation}-{self._code_label()}-{self.channel}"
        if self.mcs_table is not None:
            label += f"-mcs:{self.mcs_table}:{self.mcs_index}"
        if self.harq is not None:
            label += f"-harq{self.harq.max_transmissions}{self.harq.combining}"
        if self.priority is not None:
            label += f"+prio-{self.priority.modulation}-{self.priority._code_label()}"
        return label

    def _code_label(self) -> str:
        return f"ldpc{self.code_rate:.3g}" if self.coding == "ldpc" else "uncoded"

    def _code(self) -> dict[str, Any]:
        """The settings a ``priority`` config may give (PRIORITY_KEYS), resolved."""
        return {key: getattr(self, key) for key in PRIORITY_KEYS}


_FIELD_NAMES = tuple(f.name for f in fields(LinkConfig))
#: What a ``priority`` config may set: the code; the rest comes from the main link.
PRIORITY_KEYS = ("modulation", "coding", "code_rate", "k", "n", "mcs_table", "mcs_index")


def _priority_config(main: LinkConfig, value: object) -> LinkConfig:
    """Resolve ``priority`` (a mapping of PRIORITY_KEYS, or a LinkConfig) against ``main``."""
    if isinstance(value, LinkConfig):
        if value.priority is not None:
            raise ValueError("priority: a priority config cannot have a priority of its own")
        value = value._code()
    if not isinstance(value, dict):
        raise ValueError(f"priority must be a mapping of {list(PRIORITY_KEYS)} (or null), "
                         f"got {value!r}")
    for key in value:
        if key not in PRIORITY_KEYS:
            why = "it is inherited from the main link" if key in _FIELD_NAMES \
                else "not a link setting"
            raise ValueError(f"priority: key {key!r} cannot be set here ({why}); "
                             f"valid keys: {', '.join(PRIORITY_KEYS)}")
    inherited: dict[str, Any] = {f: getattr(main, f) for f in _FIELD_NAMES
                                 if f not in PRIORITY_KEYS and f != "priority"}
    try:
        return LinkConfig(**inherited, **value)
    except ValueError as err:
        raise ValueError(f"priority: {err}") from None


def _apply_mcs(cfg: LinkConfig) -> None:
    """Modulation and target rate from (mcs_table, mcs_index); default modulation 16qam."""
    if cfg.mcs_table is None and cfg.mcs_index is None:
        if cfg.modulation is None:
            object.__setattr__(cfg, "modulation", "16qam")
        return
    if cfg.mcs_table is None or cfg.mcs_index is None:
        raise ValueError(f"give mcs_table and mcs_index together, got mcs_table="
                         f"{cfg.mcs_table!r}, mcs_index={cfg.mcs_index!r} (tables: "
                         f"{list(MCS_TABLES)})")
    if cfg.coding != "ldpc":
        raise ValueError(f"mcs_table needs coding='ldpc', got coding={cfg.coding!r}")
    modulation, rate = decode_mcs(cfg.mcs_table, cfg.mcs_index)
    where = f"mcs_table={cfg.mcs_table!r}, mcs_index={cfg.mcs_index}"
    if cfg.modulation not in (None, modulation):
        raise ValueError(f"modulation {cfg.modulation!r} disagrees with {where} "
                         f"({modulation!r}); leave modulation out")
    object.__setattr__(cfg, "modulation", modulation)
    given = cfg.code_rate
    if given is None or abs(given - rate) < 1e-9:
        object.__setattr__(cfg, "code_rate", rate)
    elif not (cfg.k is not None and cfg.n is not None and abs(given - cfg.k / cfg.n) < 1e-9
              and _n_for_rate(cfg.k, rate, MODULATIONS[modulation]) == cfg.n):
        raise ValueError(f"code_rate {given!r} disagrees with {where} (target rate "
                         f"{rate:.6f}); leave code_rate out")


def _resolve_harq(cfg: LinkConfig) -> None:
    """``harq`` mapping -> HarqConfig; HARQ needs an LDPC code."""
    value = cfg.harq
    if value is None:
        return
    if isinstance(value, dict):
        unknown = [key for key in value if key not in ("max_transmissions", "combining")]
        if unknown:
            raise ValueError(f"harq: unknown key {unknown[0]!r} (valid keys: "
                             "max_transmissions, combining)")
        value = HarqConfig(**value)
    if not isinstance(value, HarqConfig):
        raise ValueError(f"harq must be a mapping {{max_transmissions: N, combining: "
                         f"chase | ir}} or null, got {value!r}")
    if cfg.coding != "ldpc":
        raise ValueError(f"harq needs coding='ldpc', got coding={cfg.coding!r}")
    object.__setattr__(cfg, "harq", value)


def _check_sionna_code(k: int, n: int) -> None:
    """Sionna 2.2's LDPC5GEncoder refuses repetition, rates below 1/5 and BG1 below 1/3."""
    rate, buffer = k / n, circular_buffer_bits(k, n)
    bg = select_base_graph(k, rate)
    if n > buffer or rate < 0.2 or (bg == "bg1" and rate < 1 / 3):
        raise ValueError(f"(k={k}, n={n}, rate={rate:.4f}, {bg}, {buffer} circular-buffer "
                         "bits) needs repetition or a rate Sionna 2.2 refuses (below 1/5, or "
                         "below 1/3 on BG1); use decoder='fast'")


def _normalise_numbers(cfg: LinkConfig) -> None:
    """NumPy scalars (e.g. from a sweep grid) become plain int / float before validation."""
    for name in ("k", "n", "bp_iterations", "block_symbols", "mcs_index", "n_rnti", "n_id"):
        value = getattr(cfg, name)
        if isinstance(value, np.integer):
            object.__setattr__(cfg, name, int(value))
    if isinstance(cfg.code_rate, np.floating | np.integer):
        object.__setattr__(cfg, "code_rate", float(cfg.code_rate))


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} not supported; choose one of {list(allowed)}")


def _int_in(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} {value!r} must be an int in [{lo}, {hi}]")
    return value


def _check_k(k: object) -> int:
    k = _int_in("k", k, K_MIN, K_MAX)
    if k % 8:
        raise ValueError(f"k {k} must be a multiple of 8 so each code block carries whole "
                         f"payload bytes ((k - 24) / 8); e.g. {8 * (k // 8)} or "
                         f"{8 * (k // 8 + 1)}")
    return k


def _resolve_uncoded(cfg: LinkConfig) -> tuple[int, int, float]:
    if cfg.code_rate not in (None, 1.0, 1):
        raise ValueError(f"code_rate {cfg.code_rate!r} must be None or 1 with coding='uncoded'")
    k = DEFAULT_K if cfg.k is None else _check_k(cfg.k)
    if cfg.n is not None and cfg.n != k:
        raise ValueError(f"n {cfg.n!r} must be None or equal to k={k} with coding='uncoded'")
    return k, k, 1.0


def _rate_from_value(code_rate: object) -> float:
    if isinstance(code_rate, str | bytes | bool):
        raise ValueError(f"code rate {code_rate!r} must be a number in [{RATE_MIN}, "
                         f"{RATE_MAX}], not a {type(code_rate).__name__}")
    if not isinstance(code_rate, (int, float)) \
            or not math.isfinite(code_rate) or not RATE_MIN <= code_rate <= RATE_MAX:
        raise ValueError(f"code rate {code_rate!r} outside the 5G LDPC range "
                         f"[{RATE_MIN}, {RATE_MAX}]")
    return float(code_rate)


def _n_for_rate(k: int, rate: float, bps: int) -> int:
    """Smallest multiple of bps with k / n <= rate (tolerating float round-off)."""
    return bps * math.ceil(k / (rate * bps) - 1e-9)


def _resolve_ldpc(code_rate: float | None, k: int | None, n: int | None,
                  bps: int) -> tuple[int, int, float]:
    if code_rate is None and k is None and n is None:
        code_rate = 0.5
    if code_rate is not None:
        rate = _rate_from_value(code_rate)
        if k is None:
            if n is not None:
                raise ValueError(f"give code_rate with k (n is derived) or k and n, not "
                                 f"code_rate={code_rate} with n={n} alone")
            k = DEFAULT_K if rate >= 1 / 3 else DEFAULT_K_LOW_RATE
        k = _check_k(k)
        derived = _n_for_rate(k, rate, bps)
        if n is not None and n != derived and abs(k / n - rate) > 1e-9:
            raise ValueError(f"code_rate {code_rate} is exclusive with (k, n)=({k}, {n}) "
                             f"unless they agree (k/n={k / n:.6f})")
        n = derived if n is None else n
    elif k is None or n is None:
        raise ValueError(f"LDPC needs code_rate, or k and n; got k={k!r}, n={n!r}")
    k = _check_k(k)
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0 or n % bps:
        raise ValueError(f"n {n!r} must be a positive multiple of bits_per_symbol={bps}")
    rate = k / n
    _rate_from_value(round(rate, 12))
    _check_base_graph(k, rate)
    return k, n, rate


def _check_base_graph(k: int, rate: float) -> None:
    """TS 38.212 7.2.2 base-graph choice: BG2 holds at most k = 3840 information bits.

    Rates below a graph's mother-code rate (BG1 1/3, BG2 about 1/5) are served by
    repetition of the circular buffer (TS 38.212 5.4.2.1), so they are not refused.
    """
    if select_base_graph(k, rate) == "bg2" and k > 3840:
        raise ValueError(f"(k={k}, rate={rate:.4f}) selects 5G base graph 2, which allows "
                         "k <= 3840; use a rate above 0.25 or k <= 3840")
