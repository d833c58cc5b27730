"""ISC as a link-facing codec: image + semantic map <-> layered payload of bytes.

::

    transmitter
    x [H,W,3] uint8, s [H,W] uint8
      │ s ─► majority vote (map_factor) ─► m ─► prediction symbols u          (semmap.py)
      │ x ─► BaseEncoder ─► VQ ─► i_z                                         (optional)
      │ (i_z, m) ─► SPADE generator ─► x_base
      │ (x - x_base, x_base) ─► ResidualEncoder ─► residual VQ ─► i_1 .. i_S
      ▼
    layer 0 (base):        encode_payload([TokenGrid "map": u, TokenGrid "z": i_z])
    layer k (enhancement): encode_payload([TokenGrid "e<k>": i_k]),  k = 1 .. depth
    payload = layer 0 | layer 1 | ... | layer depth          (depth = knob, 0..S)
                                       │ link (bytes + lost ranges)
    receiver                           ▼
    layer 0 intact? no ─► ok=False (the runner applies its failure policy)
                    yes ─► m, i_z ─► x_base ; s_hat = nearest-upsampled m
    layers 1..k intact (the longest intact prefix) ─► x_hat = x_base + D(e_1 + .. + e_k)
    a lost or damaged stage drops itself and every later stage (concealed=True);
    losing every enhancement layer gives exactly the base image, not an outage.

Framing. Every layer is a separate ``semcomm.bitstream`` payload with its own spec
(block names, priors), so layers never share a packet:

* Packet mode (``packet_bytes`` = the link's ``block_payload_bytes``): each layer is a
  whole number of packets of exactly ``packet_bytes``; nothing else is sent. The
  receiver finds where each layer starts from the packet checksums, which are seeded
  with the layer's spec fingerprint and the packet's index inside its layer: layer L
  starts at the first packet b for which some packet validates as (L, index p - b).
  A lost packet cannot be claimed by any layer; a layer all of whose packets are lost
  is missing (and with it every later stage).
* Single mode (``packet_bytes=None``): a layer table, then the layers back to back:
  byte 0 = number of layers n (1 + depth), then the byte lengths of layers 0 .. n-2 as
  unsigned LEB128 varints (the last layer takes the rest). Each layer is a single
  bitstream packet (version byte, CRC-32, body). 1 + ~2 (n - 1) bytes of overhead.

Bits: every byte counts in bpp (map, latent, stages, headers, layer table, padding).
Nothing else is sent: shapes come from the image size, priors from the model file.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from semcomm.bitstream import (
    DecodedPayload,
    GridSpec,
    PayloadSpec,
    TokenGrid,
    decode_payload,
    encode_payload,
)

# One implementation each: the failed-decode image is AM-VQ's, histogram -> prior SQ-GAN's.
from semcomm.codecs.base import Payload, RatePoint, ReceivedPayload, Reconstruction
from semcomm.codecs.isc.model import ISC, map_onehot
from semcomm.codecs.isc.modelfile import load_model
from semcomm.codecs.isc.semmap import (
    MAP_SYMBOLS,
    majority_downsample,
    map_from_symbols,
    map_symbols,
    to_classes,
    to_labels,
    upsample_map,
)
from semcomm.codecs.learned.priors import prior_from_counts
from semcomm.codecs.registry import register_codec

#: The shipped model file (compact config, 128 x 256 built-in street scenes).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "isc.pt"
#: The command that trains it.
TRAIN_COMMAND = "semcomm train isc --config configs/isc_compact.yaml"
#: Block names inside the layers.
GRID_MAP, GRID_Z = "map", "z"


def stage_name(k: int) -> str:
    """Block name of enhancement stage k (1-based)."""
    return f"e{k}"


def missing_checkpoint_message(path: Path) -> str:
    """Why the codec cannot start, and how to get the file."""
    return (f"ISC model file {path} not found. Train it with `{TRAIN_COMMAND}` (see "
            f"docs/isc.md) and copy results/train/isc/model.pt to {DEFAULT_CHECKPOINT}, "
            "or pass checkpoint=<path to a model.pt>")


# ----------------------------------------------------------------------- layer table
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pack_single(layers: Sequence[bytes]) -> bytes:
    """Single-mode framing: [n | LEB128 lengths of layers 0..n-2 | layers]."""
    head = bytes([len(layers)]) + b"".join(_varint(len(b)) for b in layers[:-1])
    return head + b"".join(layers)


def split_single(data: bytes, max_layers: int) -> tuple[list[tuple[int, int]], str]:
    """Byte ranges [start, stop) of the layers of a single-mode payload, or an error."""
    if not data:
        return [], "empty payload"
    n = data[0]
    if not 1 <= n <= max_layers:
        return [], f"layer table says {n} layers, allowed 1..{max_layers}"
    pos, lengths = 1, []
    for _ in range(n - 1):
        value, shift = 0, 0
        while True:
            if pos >= len(data) or shift > 28:
                return [], "truncated or corrupt layer table"
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        lengths.append(value)
    lengths.append(len(data) - pos - sum(lengths))
    if lengths[-1] < 0 or any(v < 1 for v in lengths):
        return [], f"layer lengths {lengths} do not fit the {len(data)}-byte payload"
    ranges = []
    for v in lengths:
        ranges.append((pos, pos + v))
        pos += v
    return ranges, ""


def _shift(lost: Sequence[tuple[int, int]], start: int, stop: int) -> list[tuple[int, int]]:
    """Lost byte ranges inside [start, stop), relative to start."""
    out = []
    for a, b in lost:
        lo, hi = max(int(a), start), min(int(b), stop)
        if lo < hi:
            out.append((lo - start, hi - start))
    return out


# ----------------------------------------------------------------- typed results
@dataclass(frozen=True)
class ISCEncoded:
    """Everything the transmitter knows about one encoded image (``encode_detailed``).

    Attributes
    ----------
    payload : Payload              knob = the enhancement depth used
    x_hat : [H, W, 3] uint8        what an error-free link delivers
    x_base : [H, W, 3] uint8       what the receiver shows when only the base arrives
    labels : [H, W] uint8          s_hat, the coded map at full size (255 = void)
    depth : int                    enhancement stages sent
    layer_bytes : tuple of int     bytes of each layer (base first; framing included)
    """

    payload: Payload
    x_hat: np.ndarray
    x_base: np.ndarray
    labels: np.ndarray
    depth: int
    layer_bytes: tuple[int, ...]


@dataclass(frozen=True)
class ISCReceived:
    """Everything the receiver learned (``decode_detailed``).

    Attributes
    ----------
    reconstruction : Reconstruction
    depth : int                    enhancement stages used (-1 when the base was lost)
    layers : per layer found, the bitstream report (None where the layer was not found)
    errors : why layers were dropped
    """

    reconstruction: Reconstruction
    depth: int = -1
    layers: tuple[DecodedPayload | None, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Analysis:
    """One image, analysed once for every depth."""

    size: tuple[int, int]
    map_classes: np.ndarray        # [h_m, w_m] uint8
    latent: np.ndarray | None      # [h_z, w_z] int64
    stages: np.ndarray             # [S, h_e, w_e] int64 ([0, 1, 1] when not computed)
    x_base: torch.Tensor           # [1, 3, H, W]


# ----------------------------------------------------------------------- codec
@register_codec("isc")
class ISCCodec:
    """Coarse-to-fine image semantic coder (Huang et al., GLOBECOM 2021) with bytes.

    Parameters
    ----------
    checkpoint : str, Path or None
        A ``model.pt`` written by the trainer (``weights_only=True``); None: the shipped
        ``semcomm/assets/isc.pt``. FileNotFoundError naming the training command when
        it is missing.
    packet_bytes : int or None
        None (default): single mode, the smallest payload (a layer table and one
        bitstream packet per layer). An int (the link's ``block_payload_bytes``): every
        layer in its own packets of exactly that size.
    device : str or torch.device

    Rates
    -----
    ``RatePoint(knob=k)``: k in {0, 1, ..., S} enhancement stages (0 = base layer only);
    the base layer's rate is fixed by the model (map_factor, latent grid), so k sets the
    split between base and enhancement rate. ``RatePoint(bpp=b)``: the largest k whose
    payload has at most floor(b H W / 8) bytes; if even k = 0 overshoots, the base-only
    payload is returned with a warning (``payload.bpp > b`` flags it).
    """

    name = "isc"
    conceals_losses = True  # the decoder fills what the link lost (semcomm.pipeline)

    def __init__(self, checkpoint: str | Path | None = None, packet_bytes: int | None = None,
                 device: str | torch.device = "cpu") -> None:
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(missing_checkpoint_message(path))

        bundle = load_model(path, device)
        self.model: ISC = bundle.model.eval()
        self.checkpoint, self.meta = path, bundle.meta
        self.device = torch.device(device)
        cfg = self.model.config
        self.stages = cfg.enh_stages
        self.prior_map = prior_from_counts(bundle.map_counts, MAP_SYMBOLS, "map")
        self.prior_z = prior_from_counts(bundle.latent_counts, cfg.latent_codes, "latent")
        self.prior_e = [prior_from_counts(bundle.stage_counts[k], cfg.enh_codes, f"stage {k + 1}")
                        for k in range(cfg.enh_stages)]
        self.packet_bytes = packet_bytes
        self._specs: dict[tuple[int, int], tuple[PayloadSpec, ...]] = {}
        self.specs(cfg.image_size)  # validates packet_bytes now, not at the first image

    # ------------------------------------------------------------------ geometry
    def specs(self, shape: tuple[int, int]) -> tuple[PayloadSpec, ...]:
        """Receiver's knowledge per layer for an (H, W) image: base, then stages 1..S."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._specs:
            grids = self.model.grids(key)
            base = [GridSpec(name=GRID_MAP, shape=grids["map"], prior=self.prior_map,
                             masked=False)]
            if self.model.config.base_latent:
                base.append(GridSpec(name=GRID_Z, shape=grids["latent"], prior=self.prior_z,
                                     masked=False))
            layers = [PayloadSpec(tuple(base), self.packet_bytes)]
            for k in range(1, self.stages + 1):
                layers.append(PayloadSpec((GridSpec(name=stage_name(k), shape=grids["enh"],
                                                    prior=self.prior_e[k - 1], masked=False),),
                                          self.packet_bytes))
            self._specs[key] = tuple(layers)
        return self._specs[key]

    # ------------------------------------------------------------------ encode
    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint) -> Payload:
        """One image -> Payload.

        Input
        -----
        image : [H, W, 3] uint8   x; H, W multiples of the model's factors (16 compact)
        labels : [H, W] uint8     s, trainIds in [0, 19), 255 = void (required)
        rate : RatePoint          knob = enhancement stages in {0..S}, or a bpp target

        Output
        ------
        Payload with ``knob`` = the depth used; ``bpp`` counts every byte.
        """
        an, layers, depth = self._encode(image, labels, rate)
        h, w = an.size
        data = self.frame(layers[:depth + 1])
        return Payload(data=data, num_pixels=h * w, shape=(h, w), knob=float(depth),
                       priority_bytes=base_bytes(data, layers[:depth + 1]))

    def encode_detailed(self, image: np.ndarray, labels: np.ndarray | None,
                        rate: RatePoint) -> ISCEncoded:
        """``encode`` plus the encoder-side reconstructions and the per-layer sizes."""
        an, layers, depth = self._encode(image, labels, rate)
        h, w = an.size
        data = self.frame(layers[:depth + 1])
        x_base = _to_uint8(an.x_base)
        x_hat = x_base if depth == 0 else _to_uint8(self._enhance(an.x_base, an.stages[:depth]))
        labels_hat = to_labels(upsample_map(an.map_classes, self.model.config.map_factor))
        base = base_bytes(data, layers[:depth + 1])
        sizes = (base, *(len(b) for b in layers[1:depth + 1]))
        return ISCEncoded(Payload(data=data, num_pixels=h * w, shape=(h, w), knob=float(depth),
                                  priority_bytes=base), x_hat, x_base, labels_hat, depth, sizes)

    def _encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint
                ) -> tuple[_Analysis, list[bytes], int]:
        """Analysis, layer bytes (as many as needed) and the depth chosen by ``rate``."""
        if rate.knob is not None:
            depth = self._check_knob(rate.knob)
            an = self.analyze(image, labels, stages=depth > 0)
            return an, self.layers(an, depth), depth
        an = self.analyze(image, labels)
        h, w = an.size
        layers = self.layers(an)
        budget = rate.byte_budget(h * w)  # bpp or exact max_bytes
        depth = max((k for k in range(self.stages + 1)
                     if len(self.frame(layers[:k + 1])) <= budget), default=0)
        if len(self.frame(layers[:1])) > budget:
            warnings.warn(f"isc: budget of {budget} bytes unreachable at {h}x{w}; the base "
                          f"layer alone gives {8 * len(self.frame(layers[:1])) / (h * w):.4f}"
                          " bpp", stacklevel=3)
        return an, layers, depth

    @torch.inference_mode()
    def analyze(self, image: np.ndarray, labels: np.ndarray | None,
                stages: bool = True) -> _Analysis:
        """Map, latent and (``stages``) all S stage indices of one image, and its base
        image."""
        x, classes = self._inputs(image, labels)
        cfg = self.model.config
        size = (image.shape[0], image.shape[1])
        m = majority_downsample(classes, cfg.map_factor)
        latent = None
        if cfg.base_latent:
            latent = self.model.latent_indices(x)[0].cpu().numpy()
        x_base = self._base(m, latent, size)
        idx = (self.model.stage_indices(x, x_base)[0].cpu().numpy() if stages
               else np.zeros((0, 1, 1), np.int64))
        return _Analysis(size, m, latent, idx, x_base)

    def layers(self, an: _Analysis, depth: int | None = None) -> list[bytes]:
        """Layer bytes: base, then stages 1..depth (None: all S), each a bitstream payload."""
        depth = self.stages if depth is None else depth
        if depth > an.stages.shape[0]:
            raise ValueError(f"depth {depth} needs stage indices the analysis lacks")
        blocks = [TokenGrid(name=GRID_MAP, indices=map_symbols(an.map_classes),
                            prior=self.prior_map)]
        if an.latent is not None:
            blocks.append(TokenGrid(name=GRID_Z, indices=an.latent, prior=self.prior_z))
        out = [encode_payload(blocks, self.packet_bytes)]
        for k in range(1, depth + 1):
            out.append(encode_payload([TokenGrid(name=stage_name(k), indices=an.stages[k - 1],
                                                 prior=self.prior_e[k - 1])],
                                      self.packet_bytes))
        return out

    def frame(self, layers: Sequence[bytes]) -> bytes:
        """Layers (base first) -> payload bytes (module docstring, "Framing")."""
        return b"".join(layers) if self.packet_bytes is not None else pack_single(layers)

    def _check_knob(self, knob: float) -> int:
        ok = not isinstance(knob, bool) and isinstance(knob, int | float) and (
            float(knob).is_integer() and 0 <= knob <= self.stages)
        if not ok:
            raise ValueError(f"isc knob {knob!r} must be a whole number of enhancement "
                             f"stages in 0..{self.stages}")
        return int(knob)

    def _inputs(self, image: np.ndarray, labels: np.ndarray | None
                ) -> tuple[torch.Tensor, np.ndarray]:
        """uint8 x [H,W,3], s [H,W] -> x [1,3,H,W] float32 in [0,1], classes [H,W] uint8."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or (
                image.shape[2] != 3):
            raise ValueError(f"image must be a [H, W, 3] uint8 array, got "
                             f"{getattr(image, 'shape', type(image))} "
                             f"{getattr(image, 'dtype', '')}")
        self.model.grids(image.shape[:2])
        if labels is None:
            raise ValueError("isc needs the semantic map s (labels [H, W] uint8 trainIds); "
                             "got None")
        if np.shape(labels) != image.shape[:2]:
            raise ValueError(f"labels shape {np.shape(labels)} differs from the image's "
                             f"{image.shape[:2]}")
        classes = to_classes(labels)
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        return x.to(self.device, torch.float32) / 255.0, classes

    # ------------------------------------------------------------------ shared paths
    def _base(self, m: np.ndarray, latent: np.ndarray | None,
              size: tuple[int, int]) -> torch.Tensor:
        """x_base [1, 3, H, W] from the coded map and latent indices (both ends)."""
        s = map_onehot(torch.from_numpy(m.astype(np.int64))[None].to(self.device))
        idx = None if latent is None else torch.from_numpy(
            latent.astype(np.int64))[None].to(self.device)
        with torch.inference_mode():
            return self.model.base_image(idx, s, size).contiguous()

    def _enhance(self, x_base: torch.Tensor, stages: np.ndarray) -> torch.Tensor:
        """x_base + r_hat from stage indices [k, h_e, w_e] (k >= 1) (both ends)."""
        idx = torch.from_numpy(np.ascontiguousarray(stages, dtype=np.int64))[None]
        with torch.inference_mode():
            return self.model.enhance(x_base, idx.to(self.device))

    # ------------------------------------------------------------------ decode
    def decode(self, received: ReceivedPayload) -> Reconstruction:
        """Received bytes -> x_hat [H,W,3] uint8, s_hat [H,W] uint8; never raises.

        Base layer lost or damaged: ``ok=False`` (grey image, ``error`` set). Otherwise
        the base image refined by the longest intact prefix of enhancement stages;
        ``concealed=True`` when a stage was dropped.
        """
        return self.decode_detailed(received).reconstruction

    def decode_detailed(self, received: ReceivedPayload) -> ISCReceived:
        """``decode`` plus the depth used and the per-layer bitstream reports."""
        try:
            return self._decode(received)
        except Exception as err:  # noqa: BLE001 - the contract: a result, never a raise
            msg = f"{type(err).__name__}: {err}"
            return ISCReceived(Reconstruction.failed(received.shape, msg))

    def _decode(self, received: ReceivedPayload) -> ISCReceived:
        try:
            specs = self.specs(received.shape)
        except ValueError as err:
            return ISCReceived(Reconstruction.failed(received.shape, str(err)))
        data = bytes(received.data)
        lost = [(int(a), int(b)) for a, b in received.lost]
        layers, sent_all, errors = (self._open_packets(data, lost, specs)
                                    if self.packet_bytes is not None
                                    else self._open_single(data, lost, specs))
        base = layers[0]
        if base is None or not _complete(base):
            why = "; ".join(errors) or "; ".join(base.errors if base is not None else ())
            msg = f"base layer lost: {why}"[:300]
            return ISCReceived(Reconstruction.failed(received.shape, msg),
                               -1, tuple(layers), tuple(errors))
        m = map_from_symbols(base.grids[GRID_MAP].indices)
        latent = base.grids[GRID_Z].indices if GRID_Z in base.grids else None
        size = (int(received.shape[0]), int(received.shape[1]))
        x_base = self._base(m, latent, size)
        depth = 0
        for k in range(1, self.stages + 1):
            layer = layers[k]
            if layer is None or not _complete(layer):
                break
            depth = k
        concealed = not sent_all or any(
            layer is not None and not _complete(layer) for layer in layers[1:])
        if depth:
            stages = np.stack([layers[k].grids[stage_name(k)].indices  # type: ignore[union-attr]
                               for k in range(1, depth + 1)])
            x_hat = self._enhance(x_base, stages)
        else:
            x_hat = x_base
        rec = Reconstruction(image=_to_uint8(x_hat),
                             labels=to_labels(upsample_map(m, self.model.config.map_factor)),
                             ok=True, concealed=bool(concealed or depth < _sent_depth(layers)))
        return ISCReceived(rec, depth, tuple(layers), tuple(errors))

    def _open_single(self, data: bytes, lost: list[tuple[int, int]],
                     specs: Sequence[PayloadSpec]
                     ) -> tuple[list[DecodedPayload | None], bool, list[str]]:
        """Single mode: layer table, then each layer decoded on its own."""
        layers: list[DecodedPayload | None] = [None] * len(specs)
        if any(a < 1 and b > 0 for a, b in lost):
            return layers, False, ["layer table reported lost by the link"]
        ranges, err = split_single(data, len(specs))
        if err:
            return layers, False, [err]
        for k, (a, b) in enumerate(ranges):
            layers[k] = decode_payload(data[a:b], specs[k], lost=_shift(lost, a, b))
        return layers, True, []

    def _open_packets(self, data: bytes, lost: list[tuple[int, int]],
                      specs: Sequence[PayloadSpec]
                      ) -> tuple[list[DecodedPayload | None], bool, list[str]]:
        """Packet mode: find each layer's first packet by its checksums, decode it."""
        pb = self.packet_bytes
        assert pb is not None
        n = -(-len(data) // pb)
        layers: list[DecodedPayload | None] = [None] * len(specs)
        claimed = 0
        pos = 0
        for k, spec in enumerate(specs):
            for b in range(pos, n):
                dec = decode_payload(data[b * pb:], spec, lost=_shift(lost, b * pb, len(data)))
                good = [r.index for r in dec.packets if not r.error]
                if good:
                    layers[k] = dec
                    claimed += len(good)
                    pos = b + max(good) + 1
                    break
        errors = [] if claimed == n else [f"{n - claimed} of {n} packets lost or damaged"]
        if layers[0] is None:
            errors.append("no base-layer packet arrived")
        return layers, claimed == n, errors

    def __repr__(self) -> str:
        return f"ISCCodec(checkpoint={str(self.checkpoint)!r}, packet_bytes={self.packet_bytes})"


def _complete(layer: DecodedPayload) -> bool:
    """Every position of the layer arrived. (In packet mode a layer's report also lists
    the other layers' packets as foreign, so ``layer.ok`` is not the test.)"""
    return not any(g.missing.any() for g in layer.grids.values())


def _sent_depth(layers: Sequence[DecodedPayload | None]) -> int:
    """Highest stage of which anything arrived (0 when none)."""
    return max((k for k, layer in enumerate(layers) if layer is not None), default=0)


def base_bytes(data: bytes, layers: Sequence[bytes]) -> int:
    """Bytes of ``data`` (framed ``layers``) up to the end of the base layer: the layer
    table (single mode) and layer 0. The payload's priority prefix: without the base
    nothing decodes, while a lost enhancement stage only drops itself and later ones."""
    return len(data) - sum(len(b) for b in layers[1:])


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] float -> [H, W, 3] uint8 (clamped to [0, 1], rounded)."""
    image = (x[0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy())
