"""SQ-GAN as a link-facing codec: image + semantic map <-> one payload of bytes.

::

    transmitter
    x [H,W,3] uint8, s [H,W] uint8 ─► SQGAN.encode_tokens(m_x = m, m_s = min(1, rho m))
        (bpp target: the largest m of a grid whose bytes fit; one image per call)
          │ indices_s, kept_s  and  indices_x, kept_x
          ▼
    encode_payload([TokenGrid "s", TokenGrid "x"], packet_bytes)   static priors from the
          │                                                         checkpoint's histograms
          ▼
    bytes (one packet, or packets of exactly packet_bytes) ─► link ─► bytes + lost ranges
                                                                          │
    receiver                                                              ▼
    decode_payload(bytes, spec(H, W), lost) ─► grids "s", "x": indices, mask, missing
          │
          ▼
    SQGAN.decode_tokens(kept = mask, missing) ─► x_hat [H,W,3] uint8, s_hat [H,W] uint8
        (the de-masker fills unkept and lost positions alike)

The payload is exactly ``semcomm.bitstream``'s: two masked token grids, the semantic
one first so that it travels in the first packet (x's decoder is conditioned on s_hat).
It needs no header of its own: the kept positions travel as the grids' position masks
(so m and the kept counts are implied), and everything else the receiver needs comes
from the image shape, the model file and ``packet_bytes`` (the spec's fingerprint seeds
every packet CRC, so bytes made with another model or size are rejected, not decoded).

Losses: positions of lost or corrupt packets come back ``missing`` and the de-masker
fills them like unkept ones (``concealed=True``). Only when nothing at all arrived (no
intact packet: in single-packet mode, any error) is the decode ``ok=False``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcomm.bitstream import (
    DecodedGrid,
    DecodedPayload,
    GridSpec,
    PayloadSpec,
    TokenGrid,
    decode_payload,
    encode_packets,
    encode_payload,
)
from semcomm.codecs import class_priority
from semcomm.codecs.base import (
    Payload,
    RatePoint,
    ReceivedPayload,
    Reconstruction,
    decode_in_batches,
)
from semcomm.codecs.layers import channels_last
from semcomm.codecs.learned.priors import prior_from_counts
from semcomm.codecs.registry import register_codec
from semcomm.codecs.sqgan.model import (
    SQGAN,
    BranchTokens,
    SQGANDecoded,
    SQGANTokens,
    analytic_bpp,
)
from semcomm.codecs.sqgan.modelfile import load_model
from semcomm.data.types import NUM_CLASSES, VOID

#: The shipped model file (compact config, 128 x 256 street scenes).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "sqgan.pt"
#: The command that trains it (after stages ssm and img, docs/sqgan.md "Training").
TRAIN_COMMAND = "semcomm train sqgan --stage all --config configs/sqgan_compact.yaml"
#: Rate-control grid of kept fractions m: the paper's five training values
#: {0.05, 0.2875, 0.525, 0.7625, 1.0} (the trainer's ``mask_fractions``) refined 8x, i.e.
#: 0.05 + k * 0.95 / 32 for k = 0..32. Intermediate m are valid inputs (top-k masking).
M_GRID: tuple[float, ...] = tuple(round(0.05 + k * 0.95 / 32, 10) for k in range(33))
#: Grid names inside the payload, in transmission order (semantic first).
GRID_S, GRID_X = "s", "x"
#: With ``priority_classes``: the protected parts of both grids, sent before GRID_S, GRID_X.
GRID_S_PRIO, GRID_X_PRIO = "s_prio", "x_prio"


def missing_checkpoint_message(path: Path) -> str:
    """Why the codec cannot start, and how to get the file."""
    return (f"SQ-GAN model file {path} not found. Train it with `{TRAIN_COMMAND} "
            "--init results/train/sqgan/img/model.pt` (after the ssm and img stages, see "
            f"docs/sqgan.md) and copy results/train/sqgan/all/model.pt to {DEFAULT_CHECKPOINT}, "
            "or pass checkpoint=<path to a model.pt>")


def _fraction(name: str, value: object) -> float:
    """A kept fraction in [0, 1], or a one-line ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"sqgan {name}={value!r} must be a kept fraction in [0, 1]")
    return float(value)


# ----------------------------------------------------------------- typed results
@dataclass(frozen=True)
class AnalyticRate:
    """The paper's rate of a payload beside the real one (both in bits per pixel).

    Attributes
    ----------
    kept_x, kept_s : int
        Kept (transmitted) indices per branch.
    positions : int
        Latent positions per branch, h * w.
    bits_per_index_x, bits_per_index_s : int
        ceil(log2 K) (10 for K = 1024).
    bpp_x, bpp_s : float
        (bits_per_index * kept + positions) / pixels per branch (SQ-GAN's analytic
        rate: indices plus a 1-bit position mask).
    bpp_real : float
        8 * len(payload bytes) / pixels, headers (and packet padding) included.
    """

    kept_x: int
    kept_s: int
    positions: int
    bits_per_index_x: int
    bits_per_index_s: int
    bpp_x: float
    bpp_s: float
    bpp_real: float

    @property
    def bpp(self) -> float:
        """Analytic bpp of both branches together."""
        return self.bpp_x + self.bpp_s

    def as_fields(self) -> dict[str, float | int]:
        """Flat fields for one long-format result line (prefix ``analytic_``)."""
        return {"analytic_bpp": self.bpp, "analytic_bpp_x": self.bpp_x,
                "analytic_bpp_s": self.bpp_s, "kept_x": self.kept_x, "kept_s": self.kept_s,
                "positions": self.positions}


@dataclass(frozen=True)
class _Ready:
    """A payload's token grids, ready for the network (``decode`` / ``decode_batch``)."""

    gx: Any  # the image grid of DecodedPayload.grids
    gs: Any  # the semantic grid
    dec: DecodedPayload


@dataclass(frozen=True)
class SQGANReceived:
    """Everything the receiver learned about one payload (``decode_detailed``).

    Attributes
    ----------
    reconstruction : Reconstruction
        What ``decode`` returns.
    missing_x, missing_s : [h, w] bool or None
        Latent positions filled by the de-masker because their packet was lost (None
        when the shape itself was invalid).
    payload : DecodedPayload or None
        The bitstream layer's report (per-packet fate, errors).
    decoded : SQGANDecoded or None
        The model's float output (x_hat [1, 3, H, W], s_logits, s_hat); None when
        ``ok`` is False.
    """

    reconstruction: Reconstruction
    missing_x: np.ndarray | None = None
    missing_s: np.ndarray | None = None
    payload: DecodedPayload | None = None
    decoded: SQGANDecoded | None = None


# ----------------------------------------------------------------------- codec
@register_codec("sqgan")
class SQGANCodec:
    """SQ-GAN (Pezone et al., arXiv 2502.09520) with real bytes and packets.

    Parameters
    ----------
    checkpoint : str, Path or None
        A ``model.pt`` written by the trainer (loaded with ``weights_only=True``); None:
        the shipped ``semcomm/assets/sqgan.pt``. FileNotFoundError when it is missing.
    packet_bytes : int or None
        None (default): one packet, the smallest payload; any link error loses it all.
        An int (the link's ``block_payload_bytes``, 509 for k = 4096 with CRC-24):
        independent packets of exactly that size, one per code block, so a failed
        block costs only its positions (concealed); payloads are padded to whole packets.
    device : str or torch.device
    m_s_ratio : float > 0
        The semantic branch keeps m_s = min(1, m_s_ratio * m) where the knob m is the
        image branch's m_x. 1.0 (default) keeps the same fraction in both branches, as
        the trainer's index tables do.
    m_grid : sequence of float or None
        Kept fractions tried by bpp-target rate control, in (0, 1]; None = :data:`M_GRID`.
    priority_classes : sequence of class names or None
        Semantic UEP by class (``semcomm.codecs.class_priority``): the tokens (both
        grids) of the latent tiles that hold pixels of these classes in the
        transmitter's map s, grown by ``priority_margin`` tiles, travel first as grids
        of their own, in packets that are the payload's priority bytes, instead of the
        whole semantic grid. Needs packet mode. None (default): the semantic grid's
        packets are the priority part.
    priority_margin : int >= 0
        Tiles added around the named classes' tiles (default 1: the decoders draw a
        tile from its neighbours, measured in docs/beyond.md).
    m_x, m_s : float in [0, 1] or None
        Fixed kept fractions, for the paper's m_img x m_ssm grid (``params: {m_x: 0.7,
        m_s: 0.4}``). ``m_s`` fixes the semantic branch whatever the knob (instead of
        ``m_s_ratio``, so not both). ``m_x`` fixes the image branch: the codec then has
        that one rate, a knob must equal it (``knob: [m_x]``, or leave m_x out and list
        the knobs) and a bpp target can only pick it.

    Rates
    -----
    ``RatePoint(knob=m)``: m = m_x in [0, 1]. ``RatePoint(bpp=b)``: the largest m of the
    grid whose payload has at most floor(b H W / 8) bytes (bisection; the size is
    monotone in m); if even the smallest m overshoots, that payload is returned with a
    warning and ``payload.bpp > b`` flags the point unreachable (as the classic codecs).
    """

    name = "sqgan"
    conceals_losses = True  # the decoder fills what the link lost (semcomm.pipeline)

    def __init__(self, checkpoint: str | Path | None = None, packet_bytes: int | None = None,
                 device: str | torch.device = "cpu", m_s_ratio: float = 1.0,
                 m_grid: Sequence[float] | None = None, m_x: float | None = None,
                 m_s: float | None = None, priority_classes: Sequence[str] | None = None,
                 priority_margin: int = 1) -> None:
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(missing_checkpoint_message(path))
        if isinstance(m_s_ratio, bool) or not (isinstance(m_s_ratio, int | float)
                                               and math.isfinite(m_s_ratio) and m_s_ratio > 0):
            raise ValueError(f"m_s_ratio {m_s_ratio!r} must be a finite number > 0")
        self.m_x_fixed = None if m_x is None else _fraction("m_x", m_x)
        self.m_s_fixed = None if m_s is None else _fraction("m_s", m_s)
        if self.m_s_fixed is not None and m_s_ratio != 1.0:
            raise ValueError(f"give m_s ({m_s!r}) or m_s_ratio ({m_s_ratio!r}), not both")
        if self.m_x_fixed is not None and m_grid is not None:
            raise ValueError(f"give m_x ({m_x!r}) or m_grid, not both")
        grid = tuple(sorted({float(m) for m in (M_GRID if m_grid is None else m_grid)}))
        if not grid or any(not 0.0 < m <= 1.0 for m in grid):
            raise ValueError(f"m_grid {list(grid)} must be a non-empty list of kept "
                             "fractions in (0, 1]")
        if self.m_x_fixed is not None:  # one rate: a bpp target can only pick it
            grid = (self.m_x_fixed,)

        bundle = load_model(path, device)
        # Channels-last: oneDNN's faster layout for the few-channel full-resolution
        # layers (decode 1.3x faster on the CPU); encode_detailed's x_hat and decode()
        # run the same model, so exactness holds.
        self.model: SQGAN = channels_last(bundle.model.eval())
        self.checkpoint = path
        self.device = torch.device(device)
        self.m_s_ratio = float(m_s_ratio)
        self.m_grid = grid
        self.meta = bundle.meta
        cfg = self.model.config
        for branch in ("image", "semantic"):
            if branch not in bundle.index_counts:
                raise ValueError(f"{path}: index_counts has no {branch!r} histogram "
                                 f"(found {sorted(bundle.index_counts)})")
        self.prior_x = prior_from_counts(bundle.index_counts["image"],
                                         cfg.image.codebook_size, "image")
        self.prior_s = prior_from_counts(bundle.index_counts["semantic"],
                                         cfg.semantic.codebook_size, "semantic")
        self.packet_bytes = packet_bytes
        self.priority_classes = (None if priority_classes is None
                                 else tuple(str(c) for c in priority_classes))
        self.priority_ids = (None if priority_classes is None
                             else class_priority.class_ids(priority_classes))
        if self.priority_ids is not None and packet_bytes is None:
            raise ValueError("sqgan: priority_classes needs packets (packet_bytes: an int or "
                             "auto on a run with links); one packet cannot be split by class")
        class_priority.tile_hits(np.zeros((1, 1), np.uint8), (), (1, 1), priority_margin)
        self.priority_margin = int(priority_margin)
        self._specs: dict[tuple[int, int], PayloadSpec] = {}
        self.spec(cfg.image_size)  # validates packet_bytes now, not at first image

    # ------------------------------------------------------------------ geometry
    def grid_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """Image (H, W) -> latent grid (h, w); ValueError unless both are multiples of f."""
        f = self.model.downsampling
        h, w = (int(v) for v in shape)
        if h < f or w < f or h % f or w % f:
            raise ValueError(f"image size {h}x{w} must be a positive multiple of the SQ-GAN "
                             f"downsampling {f} in both dimensions")
        return h // f, w // f

    def spec(self, shape: tuple[int, int]) -> PayloadSpec:
        """What the receiver knows for an (H, W) image: two masked grids, s then x
        (with ``priority_classes`` four: the protected parts of s and x, then the rest)."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._specs:
            grid = self.grid_shape(key)
            names = [(GRID_S, self.prior_s), (GRID_X, self.prior_x)]
            if self.priority_ids is not None:
                names = [(GRID_S_PRIO, self.prior_s), (GRID_X_PRIO, self.prior_x), *names]
            self._specs[key] = PayloadSpec(
                tuple(GridSpec(name=n, shape=grid, prior=prior, masked=True)
                      for n, prior in names), self.packet_bytes)
        return self._specs[key]

    def m_s(self, m: float) -> float:
        """Semantic kept fraction for the knob m (= m_x): ``m_s`` if fixed, else
        min(1, m_s_ratio m)."""
        if self.m_s_fixed is not None:
            return self.m_s_fixed
        return min(1.0, self.m_s_ratio * m)

    # ------------------------------------------------------------------ encode
    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint) -> Payload:
        """One image -> Payload.

        Input
        -----
        image : [H, W, 3] uint8   x; H, W multiples of the downsampling (16)
        labels : [H, W] uint8     s, trainIds in [0, 19), 255 = void (required)
        rate : RatePoint          knob = m in [0, 1], or a bpp target

        Output
        ------
        Payload with ``knob`` = the m used; ``bpp`` counts every byte.
        """
        x, s = self._inputs(image, labels)
        h, w = image.shape[:2]
        if rate.knob is not None:
            m = self._check_knob(rate.knob)
            data, priority = self._encode_m(x, s, m)
        else:
            budget = rate.byte_budget(h * w)  # bpp or exact max_bytes
            m, (data, priority) = self._fit_budget(x, s, budget)
            if len(data) > budget:
                warnings.warn(f"sqgan: budget of {budget} bytes unreachable at {h}x{w}; the "
                              f"cheapest setting (m={m:g}) gives {8 * len(data) / (h * w):.4f} "
                              "bpp", stacklevel=2)
        return Payload(data=data, num_pixels=h * w, shape=(h, w), knob=m,
                       priority_bytes=priority)

    def encode_tokens(self, image: np.ndarray, labels: np.ndarray, m: float) -> SQGANTokens:
        """The tokens ``encode`` sends at knob m (for inspection and tests)."""
        x, s = self._inputs(image, labels)
        m = self._check_knob(m)
        return self.model.encode_tokens(x, s, m, self.m_s(m))

    def pack(self, tokens: SQGANTokens) -> bytes:
        """Tokens of one image -> payload bytes (the entropy coder's output)."""
        return self._pack(tokens)[0]

    def _pack(self, tokens: SQGANTokens, labels: np.ndarray | None = None
              ) -> tuple[bytes, int]:
        """Payload bytes, and its priority prefix: in packet mode the packets that carry
        any position of the semantic grid (the map x's decoder is conditioned on), or
        with ``priority_classes`` those of the tiles holding the named classes in
        ``labels`` [H, W] (s), for a link with unequal error protection; 0 in
        single-packet mode."""
        sem, img = tokens.semantic, tokens.image
        if sem.kept.shape[0] != 1 or img.kept.shape[0] != 1:
            raise ValueError(f"one image per payload, got batches of {img.kept.shape[0]}")
        grids = [
            TokenGrid(name=name, indices=tok.indices[0].cpu().numpy(), prior=prior,
                      mask=tok.kept[0].cpu().numpy())
            for name, tok, prior in ((GRID_S, sem, self.prior_s), (GRID_X, img, self.prior_x))]
        if self.packet_bytes is None:
            return encode_payload(grids, None), 0
        if self.priority_ids is not None:
            return self._pack_by_class(grids, labels)
        packets = encode_packets(grids, self.packet_bytes)
        semantic_positions = grids[0].indices.size
        priority = sum(len(data) for start, _, data in packets if start < semantic_positions)
        return b"".join(data for _, _, data in packets), priority

    def _pack_by_class(self, grids: list[TokenGrid], labels: np.ndarray | None
                       ) -> tuple[bytes, int]:
        """Both grids split into the named classes' tiles and the rest, protected parts
        first, in packets of their own -> (bytes, priority bytes)."""
        assert self.packet_bytes is not None and self.priority_ids is not None
        if labels is None:
            raise ValueError("sqgan: priority_classes needs the map s (labels)")
        hits = class_priority.tile_hits(labels, self.priority_ids, grids[0].indices.shape,
                                        self.priority_margin)
        parts: list[list[TokenGrid]] = [[], []]
        for grid, name in zip(grids, (GRID_S_PRIO, GRID_X_PRIO), strict=True):
            assert grid.mask is not None
            hot, cold = class_priority.split_grid(grid.mask, hits)
            parts[0].append(TokenGrid(name=name, indices=grid.indices, prior=grid.prior,
                                      mask=hot))
            parts[1].append(TokenGrid(name=grid.name, indices=grid.indices,
                                      prior=grid.prior, mask=cold))
        boundary = 2 * hits.size  # the first position of the unprotected grids
        packets = encode_packets([*parts[0], *parts[1]], self.packet_bytes, [boundary])
        priority = sum(len(data) for start, _, data in packets if start < boundary)
        return b"".join(data for _, _, data in packets), priority

    def _encode_m(self, x: torch.Tensor, s: torch.Tensor, m: float) -> tuple[bytes, int]:
        labels = s[0].cpu().numpy() if self.priority_ids is not None else None
        return self._pack(self.model.encode_tokens(x, s, m, self.m_s(m)), labels)

    def _fit_budget(self, x: torch.Tensor, s: torch.Tensor,
                    budget: int) -> tuple[float, tuple[bytes, int]]:
        """Largest grid m whose payload has <= budget bytes (or the smallest m)."""
        grid = self.m_grid
        sizes: dict[int, tuple[bytes, int]] = {}

        def size(i: int) -> int:
            if i not in sizes:
                sizes[i] = self._encode_m(x, s, grid[i])
            return len(sizes[i][0])

        last = len(grid) - 1
        if size(0) > budget:  # unreachable: the caller warns
            return grid[0], sizes[0]
        if size(last) <= budget:
            return grid[last], sizes[last]
        good, bad = 0, last  # good fits, bad does not
        while bad - good > 1:
            mid = (good + bad) // 2
            if size(mid) <= budget:
                good = mid
            else:
                bad = mid
        return grid[good], sizes[good]

    def _check_knob(self, knob: float) -> float:
        if isinstance(knob, bool) or not isinstance(knob, int | float) or not 0.0 <= knob <= 1.0:
            raise ValueError(f"sqgan kept fraction m={knob!r} must be a number in [0, 1]")
        if self.m_x_fixed is not None and float(knob) != self.m_x_fixed:
            raise ValueError(f"sqgan knob {knob!r} differs from the fixed m_x {self.m_x_fixed:g}; "
                             f"use knob: [{self.m_x_fixed:g}] or drop params m_x")
        return float(knob)

    def _inputs(self, image: np.ndarray, labels: np.ndarray | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 x [H,W,3], s [H,W] -> x [1,3,H,W] float32 in [0,1], s [1,H,W] int64."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or (
                image.shape[2] != 3):
            raise ValueError(f"image must be a [H, W, 3] uint8 array, got "
                             f"{getattr(image, 'shape', type(image))} "
                             f"{getattr(image, 'dtype', '')}")
        self.grid_shape(image.shape[:2])
        if labels is None:
            raise ValueError("sqgan needs the semantic map s (labels [H, W] uint8 trainIds); "
                             "got None")
        lab = np.asarray(labels)
        if lab.shape != image.shape[:2] or not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"labels must be an integer [H, W] = {image.shape[:2]} map, got "
                             f"{lab.shape} {lab.dtype}")
        bad = (lab != VOID) & ((lab < 0) | (lab >= NUM_CLASSES))
        if bad.any():
            raise ValueError(f"labels have values {sorted(set(lab[bad].tolist()))[:5]}; allowed "
                             f"[0, {NUM_CLASSES}) and {VOID} (void)")
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        s = torch.from_numpy(lab.astype(np.int64))[None]
        return x.to(self.device, torch.float32) / 255.0, s.to(self.device)

    # ------------------------------------------------------------------ rates
    def analytic_rate(self, payload: Payload) -> AnalyticRate:
        """The paper's analytic bpp of a payload, from its bytes (kept counts read from
        the transmitted masks), beside its real bpp. ValueError on a damaged payload."""
        dec = decode_payload(payload.data, self.spec(payload.shape))
        if not dec.ok:
            raise ValueError(f"payload does not decode cleanly: {'; '.join(dec.errors)}")
        cfg = self.model.config
        gs, gx = self._grids(dec)
        kx, ks = int(gx.mask.sum()), int(gs.mask.sum())
        positions = int(gx.mask.size)
        bx = math.ceil(math.log2(cfg.image.codebook_size))
        bs = math.ceil(math.log2(cfg.semantic.codebook_size))
        px = payload.num_pixels
        return AnalyticRate(kx, ks, positions, bx, bs, analytic_bpp(kx, positions, px, bx),
                            analytic_bpp(ks, positions, px, bs), payload.bpp)

    def payload_fields(self, payload: Payload) -> dict[str, float | int]:
        """Result-line fields (the runner's ``x_*``): the paper's analytic bpp per branch
        and in total, kept counts and the real bpp; empty for a damaged payload."""
        try:
            return dict(self.analytic_rate(payload).as_fields())
        except ValueError:
            return {}

    # ------------------------------------------------------------------ decode
    def decode(self, received: ReceivedPayload) -> Reconstruction:
        """Received bytes -> x_hat [H,W,3] uint8, s_hat [H,W] uint8; never raises.

        Lost positions are concealed by the de-masker (``concealed=True``); ``ok=False``
        (grey image, no labels, ``error`` set) only when no position arrived.
        """
        return self.decode_detailed(received).reconstruction

    def decode_detailed(self, received: ReceivedPayload) -> SQGANReceived:
        """``decode`` plus which latent positions were missing and the packet report."""
        try:
            return self._decode(received)
        except Exception as err:  # noqa: BLE001 - the contract: a result, never a raise
            msg = f"{type(err).__name__}: {err}"
            return SQGANReceived(Reconstruction.failed(received.shape, msg))

    def decode_batch(self, received: Sequence[ReceivedPayload]) -> list[Reconstruction]:
        """``decode`` of each payload, the decodable ones of one image size through the
        network together (one batch per size); never raises.

        For a GPU: one network call per batch instead of per image. The results agree
        with per-image ``decode`` to float rounding (batching changes it by ~1e-5, see
        ``SQGAN.decode_tokens``: a few uint8 pixels may differ by 1), so a CPU run, which
        must be bit-exact whatever its chunking, decodes one image at a time.
        """
        def prepare(r: ReceivedPayload) -> Reconstruction | _Ready:
            prep = self._prepare(r)
            return prep.reconstruction if isinstance(prep, SQGANReceived) else prep

        def run(preps: list[_Ready]) -> list[Reconstruction]:
            batch = self._run(preps)
            return [self._finish(prep, batch, b).reconstruction
                    for b, prep in enumerate(preps)]

        return decode_in_batches(received, prepare, run, self.decode)

    def _decode(self, received: ReceivedPayload) -> SQGANReceived:
        prep = self._prepare(received)
        if isinstance(prep, SQGANReceived):
            return prep
        return self._finish(prep, self._run([prep]), 0)

    def _prepare(self, received: ReceivedPayload) -> _Ready | SQGANReceived:
        """The token grids of a payload, or its failed result (nothing decodable)."""
        try:
            spec = self.spec(received.shape)
        except ValueError as err:
            return SQGANReceived(Reconstruction.failed(received.shape, str(err)))
        dec = decode_payload(received.data, spec, lost=received.lost)
        gs, gx = self._grids(dec)
        if gs.missing.all() and gx.missing.all():
            reason = "; ".join(dec.errors) or "no position received"
            msg = f"nothing decodable: {reason}"[:300]
            return SQGANReceived(Reconstruction.failed(received.shape, msg),
                                 gx.missing, gs.missing, dec)
        return _Ready(gx, gs, dec)

    def _run(self, ready: list[_Ready]) -> SQGANDecoded:
        """The network on the token grids of ``ready`` (one image size), as one batch."""
        def stack(arrays: list[np.ndarray], dtype: Any = None) -> torch.Tensor:
            a = np.stack([np.ascontiguousarray(x, dtype=dtype) for x in arrays])
            return torch.from_numpy(a).to(self.device)

        tokens = SQGANTokens(
            image=BranchTokens(stack([r.gx.indices for r in ready]),
                               stack([r.gx.mask for r in ready], bool)),
            semantic=BranchTokens(stack([r.gs.indices for r in ready]),
                                  stack([r.gs.mask for r in ready], bool)))
        return self.model.decode_tokens(tokens, stack([r.gx.missing for r in ready], bool),
                                        stack([r.gs.missing for r in ready], bool))

    @staticmethod
    def _finish(prep: _Ready, out: SQGANDecoded, b: int) -> SQGANReceived:
        """Image ``b`` of a network batch -> its SQGANReceived."""
        image = (out.x_hat[b].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
        gx, gs = prep.gx, prep.gs
        rec = Reconstruction(image=np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy()),
                             labels=out.s_hat[b].to(torch.uint8).cpu().numpy(), ok=True,
                             concealed=bool(gs.missing.any() or gx.missing.any()))
        one = out if out.x_hat.shape[0] == 1 else SQGANDecoded(
            out.x_hat[b:b + 1], out.s_logits[b:b + 1], out.s_hat[b:b + 1])
        return SQGANReceived(rec, gx.missing, gs.missing, prep.dec, one)

    def _grids(self, dec: DecodedPayload) -> tuple[DecodedGrid, DecodedGrid]:
        """The received s and x grids (with ``priority_classes``: each merged from its
        protected part and the rest)."""
        if self.priority_ids is None:
            return dec.grids[GRID_S], dec.grids[GRID_X]
        out = []
        for hot_name, cold_name in ((GRID_S_PRIO, GRID_S), (GRID_X_PRIO, GRID_X)):
            hot, cold = dec.grids[hot_name], dec.grids[cold_name]
            out.append(DecodedGrid(*class_priority.merge_grids(
                (hot.indices, cold.indices), (hot.mask, cold.mask),
                (hot.missing, cold.missing))))
        return out[0], out[1]

    def __repr__(self) -> str:
        prio = "" if self.priority_classes is None else \
            f", priority_classes={list(self.priority_classes)}"
        return (f"SQGANCodec(checkpoint={str(self.checkpoint)!r}, packet_bytes="
                f"{self.packet_bytes}, m_s_ratio={self.m_s_ratio:g}, m_x={self.m_x_fixed}, "
                f"m_s={self.m_s_fixed}{prio})")
