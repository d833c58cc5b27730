"""Shared machinery of the classic (standardised) image codecs.

::

    encode(x, s, rate)                                   decode(received)
      rate.knob ──► _encode_knob(x, knob) ──► bytes        bytes ──► _decode_bytes ──► x_hat
      rate.bpp  ──► bisection on the knob: the highest       (any exception, wrong shape or
                    quality whose real size (headers           dtype -> Reconstruction(ok=False))
                    included) fits bpp * H * W / 8 bytes

Every subclass states its knob range, whether the knob is an integer, and whether a
higher knob means more bytes. Rate control assumes the size is monotone in the knob
(true for all six codecs up to rare one-step wiggles; the final check guarantees the
returned size never exceeds the target). If even the cheapest knob overshoots, the
cheapest encoding is returned and :func:`rate_unreachable` reports it: the pipeline
flags the point instead of silently substituting another rate.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from semcomm.codecs.base import Payload, RatePoint, ReceivedPayload, Reconstruction

#: Iterations of the bisection on a continuous knob (relative precision ~ 2**-10 of
#: the log-range, far below one byte at our image sizes).
_CONTINUOUS_STEPS = 10


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is [H, W, 3] uint8 with H, W >= 8."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(
            f"image must be a uint8 numpy array, got {type(image).__name__} "
            f"of dtype {getattr(image, 'dtype', None)}"
        )
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 8:
        raise ValueError(f"image shape {image.shape} is not [H, W, 3] with H, W >= 8")


def rate_unreachable(payload: Payload, rate: RatePoint) -> bool:
    """True when ``rate`` asks for a bpp that the payload (cheapest setting) exceeds."""
    return rate.unreachable(len(payload.data), payload.num_pixels)


class ClassicCodec(ABC):
    """Base of the classic codecs: knob rate control and crash-proof decoding.

    Subclasses set the class attributes and implement ``_encode_knob`` and
    ``_decode_bytes``; ``_decode_bytes`` may raise anything on corrupt input.
    """

    name: ClassVar[str]
    #: Inclusive knob range (lo, hi) in the codec's native units.
    knob_range: ClassVar[tuple[float, float]]
    #: Integer knob (bisection over integers) or continuous (log-scale bisection).
    integer_knob: ClassVar[bool] = True
    #: True when a larger knob gives more bytes (quality); False for e.g. distances.
    knob_increases_rate: ClassVar[bool] = True
    #: What the knob is, for docs and error messages.
    knob_name: ClassVar[str] = "quality"

    @abstractmethod
    def _encode_knob(self, image: np.ndarray, knob: float) -> bytes:
        """image [H, W, 3] uint8, knob in ``knob_range`` -> complete bitstream."""

    @abstractmethod
    def _decode_bytes(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        """bitstream -> image [H, W, 3] uint8 (may raise on corrupt data)."""

    # ------------------------------------------------------------------ encode
    def check_knob(self, knob: float) -> float:
        lo, hi = self.knob_range
        if not (lo <= knob <= hi) or (self.integer_knob and knob != int(knob)):
            kind = "an integer " if self.integer_knob else ""
            raise ValueError(
                f"{self.name} {self.knob_name} {knob!r} must be {kind}in [{lo:g}, {hi:g}]"
            )
        return float(knob)

    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint) -> Payload:
        """image [H, W, 3] uint8 -> Payload; ``labels`` is ignored (classic codecs)."""
        check_image(image)
        h, w = image.shape[:2]
        if rate.knob is not None:
            knob = self.check_knob(rate.knob)
            data = self._encode_knob(image, knob)
        else:
            budget = rate.byte_budget(h * w)  # bpp or exact max_bytes
            knob, data = self._fit_budget(image, budget)
            if len(data) > budget:
                warnings.warn(
                    f"{self.name}: budget of {budget} bytes unreachable at {h}x{w}; the "
                    f"cheapest setting ({self.knob_name}={knob:g}) gives "
                    f"{8 * len(data) / (h * w):.4f} bpp",
                    stacklevel=2,
                )
        return Payload(data=data, num_pixels=h * w, shape=(h, w), knob=knob)

    def _ordered(self, t: float) -> float:
        """Map t in [0, 1] (0 = cheapest) to a knob value."""
        lo, hi = self.knob_range
        if not self.knob_increases_rate:
            t = 1.0 - t
        if self.integer_knob:
            return float(round(lo + t * (hi - lo)))
        return math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))

    def _fit_budget(self, image: np.ndarray, budget: int) -> tuple[float, bytes]:
        """Highest-rate knob whose bitstream has <= budget bytes (or the cheapest one)."""
        cheap_knob = self._ordered(0.0)
        cheap = self._encode_knob(image, cheap_knob)
        if len(cheap) > budget:
            return cheap_knob, cheap
        best_knob = self._ordered(1.0)
        best = self._encode_knob(image, best_knob)
        if len(best) <= budget:
            return best_knob, best
        if self.integer_knob:
            return self._bisect_int(image, budget, cheap_knob, cheap)
        lo_t, hi_t, fit_knob, fit = 0.0, 1.0, cheap_knob, cheap
        for _ in range(_CONTINUOUS_STEPS):
            mid_t = 0.5 * (lo_t + hi_t)
            knob = self._ordered(mid_t)
            data = self._encode_knob(image, knob)
            if len(data) <= budget:
                lo_t, fit_knob, fit = mid_t, knob, data
            else:
                hi_t = mid_t
        return fit_knob, fit

    def _bisect_int(
        self, image: np.ndarray, budget: int, cheap_knob: float, cheap: bytes
    ) -> tuple[float, bytes]:
        good, bad = int(cheap_knob), int(self._ordered(1.0))  # good fits, bad does not
        fit = cheap
        while abs(bad - good) > 1:
            mid = (good + bad) // 2
            data = self._encode_knob(image, float(mid))
            if len(data) <= budget:
                good, fit = mid, data
            else:
                bad = mid
        return float(good), fit

    # ------------------------------------------------------------------ decode
    def decode(self, received: ReceivedPayload) -> Reconstruction:
        """Decode the received bytes; never raises on corrupt input.

        CRC-flagged byte ranges are not treated specially: a classic bitstream has no
        resynchronisation, so the decoder sees the corrupted bytes as they are (this
        is the codec-native concealment of the ``conceal`` failure policy).

        Output: Reconstruction with image [H, W, 3] uint8; ``ok=False`` (grey image,
        ``error`` set) when the decoder rejects the stream or returns a wrong shape.
        """
        h, w = received.shape
        try:
            image = self._decode_bytes(bytes(received.data), (h, w))
            image = np.ascontiguousarray(image)
            if image.dtype != np.uint8 or image.shape != (h, w, 3):
                raise ValueError(f"decoded {image.dtype} {image.shape}, expected uint8 {(h, w, 3)}")
        except Exception as err:  # noqa: BLE001 - any decoder failure is a result
            grey = np.full((h, w, 3), 128, np.uint8)
            return Reconstruction(image=grey, ok=False, error=f"{type(err).__name__}: {err}"[:200])
        return Reconstruction(image=image, ok=True, concealed=bool(received.lost))
