"""AM-VQ as a link-facing codec: image <-> one payload of bytes.

::

    transmitter
    x [H,W,3] uint8 ─► AMVQ.analyze ─► per scale s: z_s, indices_s, A_s    (once per image)
                            │  m_s = A_s > 1 - tau   (tau = knob; bpp target: largest tau that fits)
                            ▼
    encode_payload([TokenGrid  "i<s>": indices_s at ~m_s  (static prior from the checkpoint),
                    FloatBlock "f<s>": z_s at m_s, ScalarQuantizer(range from training,
                                       float_bits), level prior from the checkpoint
                    for s = 0 (coarsest) .. S-1], packet_bytes)
                            │
    bytes (one packet, or packets of exactly packet_bytes) ─► link ─► bytes + lost ranges
                                                                           │
    receiver                                                               ▼
    decode_payload ─► per scale: indices + mask, float values + mask, missing
          │  z_hat_s = float value where sent unquantized, codebook[index] where quantized,
          │            neighbour interpolation where lost (concealment)
          ▼
    AMVQ.decode ─► x_hat [H,W,3] uint8

The payload is ``semcomm.bitstream``'s with two masked blocks per scale (the position
mask is therefore coded twice, about n h2(m) bits each: small next to the float
vectors). Every bit counts in bpp: indices, float levels, both masks, headers, packet
padding. Nothing else is sent: tau is implied by the masks, shapes come from the image
size, priors, quantizers and the float range from the model file (its fingerprint seeds
every packet CRC, so bytes made with another model, bit depth or size are rejected).

Concealment of lost positions (``concealed=True``): each lost latent vector is filled
by the mean of its already known 8-neighbours, repeated outward until every position is
filled (missing areas are filled from their borders inward); a scale with no known
position at all is filled with the prior's expected code vector, sum_k p(k) e_k.
``ok=False`` only when nothing at all arrived.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from semcomm.bitstream import (
    DecodedPayload,
    FloatBlock,
    FloatSpec,
    GridSpec,
    PayloadSpec,
    Prior,
    ScalarQuantizer,
    TokenGrid,
    decode_payload,
    encode_payload,
)
from semcomm.codecs.amvq.activation import check_tau, unquantized_mask
from semcomm.codecs.amvq.model import AMVQ, ScaleAnalysis
from semcomm.codecs.amvq.modelfile import load_model
from semcomm.codecs.base import (
    Payload,
    RatePoint,
    ReceivedPayload,
    Reconstruction,
    decode_in_batches,
)
from semcomm.codecs.layers import channels_last

# One implementation each: histogram -> smoothed prior is SQ-GAN's.
from semcomm.codecs.learned.priors import PRIOR_SMOOTHING, prior_from_counts
from semcomm.codecs.registry import register_codec

#: The shipped model file (compact config, 128 x 256 built-in images).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "amvq.pt"
#: The command that trains it.
TRAIN_COMMAND = "semcomm train amvq --config configs/amvq_compact.yaml"
#: The paper's threshold (Sec. IV-B, Fig. 7); the knob's default in docs and sweeps.
PAPER_TAU = 0.3
#: Rate-control grid of tau for bpp targets: 0, 0.025, ..., 1 (tau = 0 is plain VQ).
TAU_GRID: tuple[float, ...] = tuple(round(k / 40, 10) for k in range(41))


def missing_checkpoint_message(path: Path) -> str:
    """Why the codec cannot start, and how to get the file."""
    return (f"AM-VQ model file {path} not found. Train it with `{TRAIN_COMMAND}` "
            f"(see docs/amvq.md) and copy results/train/amvq/model.pt to "
            f"{DEFAULT_CHECKPOINT}, or pass checkpoint=<path to a model.pt>")


def level_prior(value_counts: np.ndarray | torch.Tensor, quantizer: ScalarQuantizer) -> Prior:
    """Prior of the quantizer's 2**bits levels from a value histogram over [lo, hi].

    Each of the histogram's equal bins is assigned to the level of its centre; counts
    are smoothed like the index priors (+0.5 per level), so every level stays codable.
    Transmitter and receiver compute it identically from the model file.
    """
    counts = np.asarray(torch.as_tensor(value_counts).cpu().numpy(), dtype=np.float64)
    if counts.ndim != 1 or counts.size < 1 or np.any(counts < 0):
        raise ValueError(f"value histogram must be [bins] non-negative counts, got "
                         f"shape {counts.shape}")
    edges = np.linspace(quantizer.lo, quantizer.hi, counts.size + 1)
    levels = quantizer.quantize(0.5 * (edges[:-1] + edges[1:]))
    per_level = np.bincount(levels, weights=counts, minlength=quantizer.levels).astype(
        np.float64) + PRIOR_SMOOTHING
    return Prior(per_level / per_level.sum())


def grid_name(scale: int) -> str:
    return f"i{scale}"


def float_name(scale: int) -> str:
    return f"f{scale}"


# ----------------------------------------------------------------- typed results
@dataclass(frozen=True)
class AMVQEncoded:
    """Everything the transmitter knows about one encoded image (``encode_detailed``).

    Attributes
    ----------
    payload : Payload
    x_hat : [H, W, 3] uint8
        The transmitter-side reconstruction: what an error-free link delivers.
    tau : float
        The threshold used.
    unquantized : tuple of int
        Vectors sent unquantized per scale (coarsest first).
    positions : tuple of int
        Latent positions per scale.
    """

    payload: Payload
    x_hat: np.ndarray
    tau: float
    unquantized: tuple[int, ...]
    positions: tuple[int, ...]

    @property
    def unquantized_fraction(self) -> float:
        return sum(self.unquantized) / max(sum(self.positions), 1)


@dataclass(frozen=True)
class AMVQReceived:
    """Everything the receiver learned about one payload (``decode_detailed``).

    Attributes
    ----------
    reconstruction : Reconstruction
    concealed : per scale [h, w] bool, positions filled by concealment (None on failure)
    unquantized : per scale [h, w] bool, positions received as float vectors
    payload : DecodedPayload or None, the bitstream layer's report
    """

    reconstruction: Reconstruction
    concealed: tuple[np.ndarray, ...] | None = None
    unquantized: tuple[np.ndarray, ...] | None = None
    payload: DecodedPayload | None = None


@dataclass(frozen=True)
class _Grids:
    """A payload's latent grids [1, d, h, w] per scale, ready for the decoder."""

    z_hat: list[torch.Tensor]
    concealed: tuple[np.ndarray, ...]
    unquantized: tuple[np.ndarray, ...]
    payload: DecodedPayload


# ----------------------------------------------------------------------- codec
@register_codec("amvq")
class AMVQCodec:
    """AM-VQ (arXiv 2406.04740) with real bytes and packets.

    Parameters
    ----------
    checkpoint : str, Path or None
        A ``model.pt`` written by the trainer (``weights_only=True``); None: the shipped
        ``semcomm/assets/amvq.pt``. FileNotFoundError when it is missing.
    packet_bytes : int or None
        None (default): one packet, the smallest payload; any link error loses it all.
        An int (the link's ``block_payload_bytes``): independent packets of exactly that
        size, so a failed code block costs only its positions (concealed).
    device : str or torch.device
    float_bits : int in [1, 16] or None
        Bit depth of the scalar quantizer of unquantized vectors; None = the model's
        ``float_bits``. The level prior for any depth derives from the model file.
    tau_grid : sequence of float in [0, 1] or None
        Thresholds tried by bpp-target rate control; None = :data:`TAU_GRID`.

    Rates
    -----
    ``RatePoint(knob=tau)``: positions whose activation map exceeds 1 - tau are sent
    unquantized; tau = 0 sends none (plain VQ), higher tau sends more (more bytes,
    higher quality), as the paper's Fig. 7. ``RatePoint(bpp=b)``: the largest tau of the
    grid whose payload has at most floor(b H W / 8) bytes (bisection; the size rises with
    tau); if even tau = min(grid) overshoots, that payload is returned with a warning and
    ``payload.bpp > b`` flags the point unreachable.
    """

    name = "amvq"
    conceals_losses = True  # the decoder fills what the link lost (semcomm.pipeline)
    marks_priority = False  # no priority bytes: packets follow the main code's blocks

    def __init__(self, checkpoint: str | Path | None = None, packet_bytes: int | None = None,
                 device: str | torch.device = "cpu", float_bits: int | None = None,
                 tau_grid: Sequence[float] | None = None) -> None:
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(missing_checkpoint_message(path))
        grid = tuple(sorted({check_tau(t) for t in (TAU_GRID if tau_grid is None
                                                   else tau_grid)}))
        if not grid:
            raise ValueError("tau_grid must hold at least one tau in [0, 1]")

        bundle = load_model(path, device)
        # Channels-last: oneDNN's faster convolution layout for few channels at high
        # resolution (measured 1.3x on the CPU); the transmitter's x_hat and decode()
        # use the same model, so exactness holds.
        self.model: AMVQ = channels_last(bundle.model.eval())
        self.checkpoint, self.meta = path, bundle.meta
        self.device = torch.device(device)
        cfg = self.model.config
        bits = cfg.float_bits if float_bits is None else float_bits
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
            raise ValueError(f"float_bits {float_bits!r} must be an int in [1, 16]")
        self.float_bits, self.tau_grid, self.packet_bytes = bits, grid, packet_bytes
        self.index_priors = [prior_from_counts(bundle.index_counts[s], cfg.codebook_size,
                                               f"scale {s}") for s in range(cfg.scales)]
        self.quantizers = [self.model.scalar_quantizer(s, bits) for s in range(cfg.scales)]
        self.level_priors = [level_prior(bundle.value_counts[s], self.quantizers[s])
                             for s in range(cfg.scales)]
        self.mean_codes = [self.model.mean_code(s, self.index_priors[s].probs)
                           for s in range(cfg.scales)]
        self._specs: dict[tuple[int, int], PayloadSpec] = {}
        self.spec(cfg.image_size)  # validates packet_bytes now, not at the first image

    # ------------------------------------------------------------------ geometry
    def spec(self, shape: tuple[int, int]) -> PayloadSpec:
        """What the receiver knows for an (H, W) image: per scale a masked token grid and
        a masked float block, coarsest scale first."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._specs:
            blocks: list[GridSpec | FloatSpec] = []
            for s, grid in enumerate(self.model.grid_shapes(key)):
                blocks.append(GridSpec(name=grid_name(s), shape=grid,
                                       prior=self.index_priors[s], masked=True))
                blocks.append(FloatSpec(name=float_name(s), shape=grid,
                                        dim=self.model.config.code_dim,
                                        quantizer=self.quantizers[s],
                                        prior=self.level_priors[s], masked=True))
            self._specs[key] = PayloadSpec(tuple(blocks), self.packet_bytes)
        return self._specs[key]

    # ------------------------------------------------------------------ encode
    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint) -> Payload:
        """One image -> Payload.

        Input
        -----
        image : [H, W, 3] uint8   x; H, W multiples of the downsampling
        labels : ignored (AM-VQ does not use the semantic map; None is fine)
        rate : RatePoint          knob = tau in [0, 1], or a bpp target

        Output
        ------
        Payload with ``knob`` = the tau used; ``bpp`` counts every byte.
        """
        return self._encode(image, rate)[0]

    def encode_detailed(self, image: np.ndarray, rate: RatePoint) -> AMVQEncoded:
        """``encode`` plus the transmitter-side reconstruction and per-scale counts."""
        payload, tau, analysis, z_hat = self._encode(image, rate)
        sent = tuple(int(unquantized_mask(an.a, tau).sum()) for an in analysis)
        return AMVQEncoded(payload, self._to_uint8(self.model.decode(z_hat)), tau, sent,
                           tuple(int(an.a.numel()) for an in analysis))

    def _encode(self, image: np.ndarray, rate: RatePoint
                ) -> tuple[Payload, float, list[ScaleAnalysis], list[torch.Tensor]]:
        """(payload, tau, analysis, z_hat) of one image; no decoder pass (``encode`` does not
        need the reconstruction)."""
        analysis = self.analyze(image)
        h, w = image.shape[:2]
        if rate.knob is not None:
            tau = check_tau(rate.knob)
            data, z_hat = self.pack(analysis, tau)
        else:
            budget = rate.byte_budget(h * w)  # bpp or exact max_bytes
            tau, data, z_hat = self._fit_budget(analysis, budget)
            if len(data) > budget:
                warnings.warn(f"amvq: budget of {budget} bytes unreachable at {h}x{w}; the "
                              f"cheapest setting (tau={tau:g}) gives "
                              f"{8 * len(data) / (h * w):.4f} bpp", stacklevel=2)
        payload = Payload(data=data, num_pixels=h * w, shape=(h, w), knob=tau)
        return payload, tau, analysis, z_hat

    def analyze(self, image: np.ndarray) -> list[ScaleAnalysis]:
        """Features, nearest indices and activation maps of one image (any tau)."""
        return self.model.analyze(self._input(image))

    def pack(self, analysis: Sequence[ScaleAnalysis], tau: float
             ) -> tuple[bytes, list[torch.Tensor]]:
        """Analysis of one image + tau -> (payload bytes, z_hat per scale).

        z_hat is exactly what the receiver reconstructs from the bytes on an error-free
        link (the same dequantization and code lookup).
        """
        tau = check_tau(tau)
        blocks: list[TokenGrid | FloatBlock] = []
        z_hat = []
        for s, an in enumerate(analysis):
            if an.z.shape[0] != 1:
                raise ValueError(f"one image per payload, got a batch of {an.z.shape[0]}")
            sent = unquantized_mask(an.a[0], tau).cpu().numpy()
            idx = an.indices[0].cpu().numpy()
            z = an.z[0].permute(1, 2, 0).cpu().numpy()  # [h, w, d]
            q = self.quantizers[s]
            blocks.append(TokenGrid(name=grid_name(s), indices=idx, prior=self.index_priors[s],
                                    mask=~sent))
            blocks.append(FloatBlock(name=float_name(s), values=z, quantizer=q, mask=sent,
                                     prior=self.level_priors[s]))
            values = np.where(sent[..., None], q.dequantize(q.quantize(z)), np.float32(0.0))
            z_hat.append(self._assemble(s, idx, ~sent, values.astype(np.float32), sent))
        return encode_payload(blocks, self.packet_bytes), z_hat

    def _fit_budget(self, analysis: Sequence[ScaleAnalysis], budget: int
                    ) -> tuple[float, bytes, list[torch.Tensor]]:
        """Largest grid tau whose payload has <= budget bytes (or the smallest tau)."""
        grid = self.tau_grid
        done: dict[int, tuple[bytes, list[torch.Tensor]]] = {}

        def size(i: int) -> int:
            if i not in done:
                done[i] = self.pack(analysis, grid[i])
            return len(done[i][0])

        last = len(grid) - 1
        if size(0) > budget:  # unreachable: the caller warns
            return grid[0], *done[0]
        if size(last) <= budget:
            return grid[last], *done[last]
        good, bad = 0, last  # good fits, bad does not (sizes rise with tau)
        while bad - good > 1:
            mid = (good + bad) // 2
            if size(mid) <= budget:
                good = mid
            else:
                bad = mid
        return grid[good], *done[good]

    def _input(self, image: np.ndarray) -> torch.Tensor:
        """uint8 [H, W, 3] -> x [1, 3, H, W] float32 in [0, 1] on the device."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or (
                image.shape[2] != 3):
            raise ValueError(f"image must be a [H, W, 3] uint8 array, got "
                             f"{getattr(image, 'shape', type(image))} "
                             f"{getattr(image, 'dtype', '')}")
        self.model.grid_shapes(image.shape[:2])
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        return x.to(self.device, torch.float32) / 255.0

    # ------------------------------------------------------------------ assembly
    def _assemble(self, scale: int, indices: np.ndarray, quantized: np.ndarray,
                  values: np.ndarray, unquantized: np.ndarray) -> torch.Tensor:
        """z_hat [1, d, h, w] from decoded indices [h, w] (valid where ``quantized``) and
        float values [h, w, d] (valid where ``unquantized``); positions in neither are
        concealed."""
        idx = torch.from_numpy(np.where(quantized, indices, 0).astype(np.int64))
        codes = self.model.lookup(scale, idx[None].to(self.device))  # [1, d, h, w]
        floats = torch.from_numpy(np.ascontiguousarray(values)).permute(2, 0, 1)[None]
        z = torch.where(torch.from_numpy(unquantized).to(self.device)[None, None],
                        floats.to(self.device), codes)
        known = torch.from_numpy(quantized | unquantized).to(self.device)
        if not bool(known.all()):
            z = conceal(z, known, self.mean_codes[scale])
        return z.contiguous()  # one memory layout on both ends: identical conv rounding

    # ------------------------------------------------------------------ decode
    def decode(self, received: ReceivedPayload) -> Reconstruction:
        """Received bytes -> x_hat [H, W, 3] uint8 (labels None); never raises.

        Lost positions are concealed (``concealed=True``); ``ok=False`` (grey image,
        ``error`` set) only when no position arrived.
        """
        return self.decode_detailed(received).reconstruction

    def decode_detailed(self, received: ReceivedPayload) -> AMVQReceived:
        """``decode`` plus which positions were concealed / unquantized and the report."""
        try:
            return self._decode(received)
        except Exception as err:  # noqa: BLE001 - the contract: a result, never a raise
            msg = f"{type(err).__name__}: {err}"
            return AMVQReceived(Reconstruction.failed(received.shape, msg))

    def decode_batch(self, received: Sequence[ReceivedPayload]) -> list[Reconstruction]:
        """``decode`` of each payload, the decodable ones of one image size through the
        decoder together (one batch per size); never raises. For a GPU; the results
        agree with per-image ``decode`` to float rounding (a CPU run, bit-exact whatever
        its chunking, decodes one image at a time)."""
        def prepare(r: ReceivedPayload) -> Reconstruction | _Grids:
            prep = self._prepare(r)
            return prep.reconstruction if isinstance(prep, AMVQReceived) else prep

        def run(preps: list[_Grids]) -> list[Reconstruction]:
            x_hat = self.model.decode([torch.cat(zs) for zs in zip(
                *(prep.z_hat for prep in preps), strict=True)])
            return [self._finish(prep, x_hat[b:b + 1]).reconstruction
                    for b, prep in enumerate(preps)]

        return decode_in_batches(received, prepare, run, self.decode)

    def _decode(self, received: ReceivedPayload) -> AMVQReceived:
        prep = self._prepare(received)
        if isinstance(prep, AMVQReceived):
            return prep
        return self._finish(prep, self.model.decode(prep.z_hat))

    def _prepare(self, received: ReceivedPayload) -> _Grids | AMVQReceived:
        """The latent grids of a payload, or its failed result (nothing decodable)."""
        try:
            spec = self.spec(received.shape)
        except ValueError as err:
            return AMVQReceived(Reconstruction.failed(received.shape, str(err)))
        dec = decode_payload(received.data, spec, lost=received.lost)
        z_hat, concealed, unquantized = [], [], []
        for s in range(self.model.config.scales):
            g, f = dec.grids[grid_name(s)], dec.floats[float_name(s)]
            quantized = g.mask & ~g.missing
            sent = f.mask & ~f.missing
            z_hat.append(self._assemble(s, g.indices, quantized, f.values, sent))
            concealed.append(~(quantized | sent))
            unquantized.append(sent)
        if all(c.all() for c in concealed):
            reason = "; ".join(dec.errors) or "no position received"
            msg = f"nothing decodable: {reason}"[:300]
            return AMVQReceived(Reconstruction.failed(received.shape, msg),
                                tuple(concealed), tuple(unquantized), dec)
        return _Grids(z_hat, tuple(concealed), tuple(unquantized), dec)

    def _finish(self, prep: _Grids, x_hat: torch.Tensor) -> AMVQReceived:
        """The decoder's x_hat [1, 3, H, W] of a prepared payload -> its AMVQReceived."""
        lost = any(c.any() for c in prep.concealed)
        rec = Reconstruction(image=self._to_uint8(x_hat), labels=None, ok=True,
                             concealed=lost)
        return AMVQReceived(rec, prep.concealed, prep.unquantized, prep.payload)

    @staticmethod
    def _to_uint8(x_hat: torch.Tensor) -> np.ndarray:
        image = (x_hat[0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
        return np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy())

    def __repr__(self) -> str:
        return (f"AMVQCodec(checkpoint={str(self.checkpoint)!r}, packet_bytes="
                f"{self.packet_bytes}, float_bits={self.float_bits})")


def conceal(z: torch.Tensor, known: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """Fill unknown latent vectors by iterated 8-neighbour averaging of known ones.

    Input
    -----
    z : [1, d, h, w] float32     values at known positions (anything elsewhere)
    known : [h, w] bool
    fallback : [d] float32       used everywhere when no position is known

    Output
    ------
    [1, d, h, w] float32: z at known positions; each unknown position gets the mean of
    its known neighbours in the first sweep that reaches it (at most h + w sweeps).
    """
    if not bool(known.any()):
        return fallback.view(1, -1, 1, 1).expand_as(z).clone()
    kernel = torch.ones(1, 1, 3, 3, dtype=z.dtype, device=z.device)
    have = known[None, None].to(z.dtype)
    out = torch.where(known[None, None], z, torch.zeros_like(z))
    for _ in range(z.shape[2] + z.shape[3]):
        if bool(have.all()):
            break
        weight = F.conv2d(have, kernel, padding=1)
        total = F.conv2d((out * have).reshape(-1, 1, *z.shape[2:]), kernel,
                         padding=1).reshape_as(z)
        fill = (have == 0) & (weight > 0)
        out = torch.where(fill, total / weight.clamp_min(1.0), out)
        have = torch.where(fill, torch.ones_like(have), have)
    return out
