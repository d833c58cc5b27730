"""The interface every codec (classic or learned) implements.

::

    encode(x, s, rate) ──► Payload(data: bytes, ...)       transmitter
    decode(ReceivedPayload) ──► Reconstruction             receiver

``ReceivedPayload`` carries the bytes after the link plus the byte ranges whose code
blocks failed their CRC, so a codec can treat them as erasures (packet-based codecs
conceal them) or give up (a classic codec's bitstream is then corrupt).

Analog codecs (class attribute ``payload_kind = "symbols"``, e.g. DeepJSCC) encode to a
:class:`SymbolPayload` of complex channel symbols instead, which the runner sends over
``channels.analog`` (no bits, no code); their ``decode`` takes :class:`ReceivedSymbols`::

    encode(x, s, rate) ──► SymbolPayload(symbols: [k] complex64, ...)
    decode(ReceivedSymbols(symbols, noise_var, esno_db)) ──► Reconstruction
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RatePoint:
    """One operating point of a codec.

    Exactly one of ``bpp`` (target bits per pixel, reached by the codec's own rate
    control), ``max_bytes`` (an exact byte budget, e.g. what a link carries in a given
    number of channel uses: no bpp round trip, so no byte lost to flooring) and ``knob``
    (the codec's native parameter, e.g. JPEG quality, SQ-GAN kept fraction m, AM-VQ
    tau) is set. ``label`` names the point in result files.
    """

    bpp: float | None = None
    knob: float | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        given = sum(v is not None for v in (self.bpp, self.knob, self.max_bytes))
        if given != 1:
            raise ValueError(
                f"RatePoint needs exactly one of bpp, knob or max_bytes, got bpp={self.bpp}, "
                f"knob={self.knob}, max_bytes={self.max_bytes}"
            )
        if self.bpp is not None and not (0.0 < self.bpp <= 24.0):
            raise ValueError(f"target bpp {self.bpp} outside (0, 24]")
        if self.max_bytes is not None and (isinstance(self.max_bytes, bool) or not isinstance(
                self.max_bytes, int) or self.max_bytes < 1):
            raise ValueError(f"max_bytes {self.max_bytes!r} must be an int >= 1")

    @property
    def label(self) -> str:
        if self.max_bytes is not None:
            return f"bytes={self.max_bytes}"
        return f"bpp={self.bpp:g}" if self.bpp is not None else f"knob={self.knob:g}"

    def byte_budget(self, num_pixels: int) -> int:
        """Bytes a payload of ``num_pixels`` pixels may have: ``max_bytes``, or
        floor(bpp * num_pixels / 8). ValueError for a knob point (no budget)."""
        if self.max_bytes is not None:
            return self.max_bytes
        if self.bpp is None:
            raise ValueError(f"rate point {self.label} has no byte budget (it is a knob)")
        return int(math.floor(self.bpp * num_pixels / 8.0))

    def target_bpp(self, num_pixels: int) -> float | None:
        """The bpp the budget stands for (None for a knob point)."""
        if self.max_bytes is not None:
            return 8.0 * self.max_bytes / num_pixels
        return self.bpp

    def unreachable(self, num_bytes: int, num_pixels: int) -> bool:
        """True when a payload of ``num_bytes`` exceeds this point's budget."""
        if self.knob is not None:
            return False
        return num_bytes > self.byte_budget(num_pixels)


@dataclass(frozen=True)
class Payload:
    """Encoder output: the bytes that go on the link.

    Attributes
    ----------
    data : bytes
        The complete bitstream, headers included; ``bpp`` is computed from it.
    num_pixels : int
        H * W of the source image.
    shape : (H, W)
        Source image size (known to the receiver out of band, as in the papers).
    knob : float | None
        The native knob the rate control settled on (for reporting).
    priority_bytes : int
        How many leading bytes of ``data`` the codec asks the link to protect more (its
        most important packets: SQ-GAN's semantic map, ISC's base layer); a link with a
        ``priority`` config sends them on that modulation and code. 0: none.
    """

    data: bytes
    num_pixels: int
    shape: tuple[int, int]
    knob: float | None = None
    priority_bytes: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.priority_bytes <= len(self.data):
            raise ValueError(f"priority_bytes {self.priority_bytes} must be in "
                             f"[0, {len(self.data)}] (the payload length)")

    @property
    def bpp(self) -> float:
        return 8.0 * len(self.data) / self.num_pixels


@dataclass(frozen=True)
class ReceivedPayload:
    """What the receiver hands to ``decode``.

    ``lost`` lists half-open byte ranges [start, stop) of ``data`` that belong to code
    blocks whose CRC failed: their content is unreliable (not zeroed).
    """

    data: bytes
    shape: tuple[int, int]
    lost: tuple[tuple[int, int], ...] = field(default_factory=tuple)

    @property
    def intact(self) -> bool:
        return not self.lost


#: What a codec's encoder emits: "bytes" (default) or "symbols" (analog codecs).
PAYLOAD_KINDS = ("bytes", "symbols")


@dataclass(frozen=True)
class SymbolPayload:
    """Analog encoder output: the complex symbols that go on the channel as they are.

    Attributes
    ----------
    symbols : [k] complex64
        z, average power 1 per symbol (Es = 1, as the digital link's constellations);
        one symbol is one channel use.
    num_pixels : int
        H * W of the source image.
    shape : (H, W)
        Source image size (known to the receiver out of band).
    knob : float | None
        The codec's native knob (DeepJSCC: the bandwidth ratio k / (H W)).
    """

    symbols: np.ndarray
    num_pixels: int
    shape: tuple[int, int]
    knob: float | None = None

    def __post_init__(self) -> None:
        z = self.symbols
        if not isinstance(z, np.ndarray) or z.ndim != 1 or z.size == 0 \
                or z.dtype != np.complex64:
            raise ValueError(f"symbols must be a non-empty 1-D complex64 array, got "
                             f"{getattr(z, 'dtype', type(z).__name__)} "
                             f"{getattr(z, 'shape', '')}")

    @property
    def channel_uses(self) -> int:
        return int(self.symbols.size)

    @property
    def cu_per_pixel(self) -> float:
        return self.symbols.size / self.num_pixels


@dataclass(frozen=True)
class ReceivedSymbols:
    """What an analog receiver hands to ``decode``.

    Attributes
    ----------
    symbols : [k] complex64      equalised symbols z_hat
    noise_var : [k] float32      no / |h|^2 per symbol (perfect CSI); 0 = noiseless
    esno_db : float | None       average Es/N0 of the channel, dB; None = noiseless
    shape : (H, W)
    equaliser : "mmse" | "zf"    how ``symbols`` were equalised (``channels.analog``)
    """

    symbols: np.ndarray
    noise_var: np.ndarray
    esno_db: float | None
    shape: tuple[int, int]
    equaliser: str = "mmse"


@dataclass(frozen=True)
class Reconstruction:
    """Decoder output.

    Attributes
    ----------
    image : [H, W, 3] uint8
        x_hat. On a failed decode it is whatever the decode-failure policy supplied.
    labels : [H, W] uint8 or None
        s_hat, the decoded semantic map, for codecs that transmit one.
    ok : bool
        False when the bitstream could not be decoded (the image is then a fallback).
    concealed : bool
        True when losses were concealed by the codec itself (partial decode).
    error : str
        Why the decode failed, empty when ``ok``.
    """

    image: np.ndarray
    labels: np.ndarray | None = None
    ok: bool = True
    concealed: bool = False
    error: str = ""

    @classmethod
    def failed(cls, shape: tuple[int, int], error: str) -> Reconstruction:
        """ok=False with a mid-grey image of the expected size (the pipeline shows its
        failure-policy image instead); a malformed ``shape`` gives a 1 x 1 image."""
        try:
            h, w = max(1, int(shape[0])), max(1, int(shape[1]))
        except (TypeError, ValueError, IndexError):
            h, w = 1, 1
        return cls(image=np.full((h, w, 3), 128, np.uint8), labels=None, ok=False, error=error)


@runtime_checkable
class Codec(Protocol):
    """A source codec. Implementations are registered by their YAML name.

    Optionally a codec also defines ``payload_fields(payload) -> dict[str, float | int]``:
    flat numeric fields about one payload that the runner records in each result line as
    ``x_<name>`` and averages in the summary (e.g. SQ-GAN's analytic bpp beside the real
    bpp measured from the bytes).

    A codec whose decoder handles CRC-lost byte ranges itself (fills lost tokens,
    drops lost enhancement layers) sets the class attribute ``conceals_losses = True``:
    the receiver then hands it the damaged bytes under every failure policy
    (``semcomm.pipeline``). Without it the policy decides.
    """

    name: str

    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint) -> Payload:
        """image: [H, W, 3] uint8; labels: [H, W] uint8 trainIds (or None)."""
        ...

    def decode(self, received: ReceivedPayload) -> Reconstruction:
        """Never raises on corrupt input: returns ``Reconstruction(ok=False, ...)``."""
        ...


@runtime_checkable
class AnalogCodec(Protocol):
    """A codec whose payload is complex channel symbols (``payload_kind = "symbols"``)."""

    name: str
    payload_kind: str

    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint
               ) -> SymbolPayload:
        """image: [H, W, 3] uint8 -> symbols with mean power 1."""
        ...

    def decode(self, received: Any) -> Reconstruction:
        """ReceivedSymbols -> Reconstruction; never raises (anything else: ok=False)."""
        ...


_Prep = TypeVar("_Prep")


def decode_in_batches(received: Sequence[ReceivedPayload],
                      prepare: Callable[[ReceivedPayload], Reconstruction | _Prep],
                      run: Callable[[list[_Prep]], list[Reconstruction]],
                      decode: Callable[[ReceivedPayload], Reconstruction]
                      ) -> list[Reconstruction]:
    """A codec's ``decode_batch``: ``prepare`` each payload (its entropy decoding: a
    finished, e.g. failed, Reconstruction or what the network needs), ``run`` the network
    once per image size on the prepared ones, in order; never raises. A payload whose
    ``prepare`` raises fails alone; a batch whose ``run`` raises is decoded image by image
    (``decode``)."""
    out: list[Reconstruction | None] = [None] * len(received)
    groups: dict[tuple[int, ...], list[tuple[int, _Prep]]] = {}
    for j, r in enumerate(received):
        try:
            prep = prepare(r)
        except Exception as err:  # noqa: BLE001 - the contract: a result, never a raise
            prep = Reconstruction.failed(r.shape, f"{type(err).__name__}: {err}")
        if isinstance(prep, Reconstruction):
            out[j] = prep
        else:
            groups.setdefault(tuple(r.shape), []).append((j, prep))
    for group in groups.values():
        try:
            recs = run([prep for _, prep in group])
            for (j, _), rec in zip(group, recs, strict=True):
                out[j] = rec
        except Exception:  # noqa: BLE001 - one bad batch: decode its images alone
            for j, _ in group:
                out[j] = decode(received[j])
    return [r if r is not None else Reconstruction.failed(received[j].shape, "not decoded")
            for j, r in enumerate(out)]
