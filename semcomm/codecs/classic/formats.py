"""The six classic codecs: JPEG, JPEG 2000, WebP, HEVC-intra (HEIF), AVIF, JPEG XL.

Each is a thin adapter from a library encoder/decoder to :class:`ClassicCodec`; rate
control and crash-proof decoding live there. Every decoder first checks the declared
image size against the expected one before decoding pixels, so a corrupted header
cannot make it allocate a huge image.

HEVC-intra stands in for BPG (Bellard's HEVC-intra format): no BPG encoder is
available from the package registries, and BPG is HEVC intra coding in a small
header, so the HEIF container costs a few hundred bytes more than BPG would.
"""

from __future__ import annotations

import io
from typing import Any, ClassVar

import imagecodecs
import numpy as np
import pillow_heif
from PIL import Image

from semcomm.codecs.classic._core import ClassicCodec
from semcomm.codecs.registry import register_codec


def _pillow_decode(data: bytes, shape: tuple[int, int], fmt: str) -> np.ndarray:
    """Decode with Pillow restricted to one format, checking the size before pixels."""
    with Image.open(io.BytesIO(data), formats=[fmt]) as im:
        if im.size != (shape[1], shape[0]):
            raise ValueError(f"declared size {im.size} != expected {(shape[1], shape[0])}")
        im.load()
        return np.asarray(im.convert("RGB"))


def _pillow_encode(image: np.ndarray, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format=fmt, **options)
    return buf.getvalue()


@register_codec("jpeg")
class JpegCodec(ClassicCodec):
    """Baseline JPEG (libjpeg via Pillow), 4:2:0 chroma, optimised Huffman tables.

    knob: quality in [1, 95] (Pillow's advice: above 95 only wastes bytes).
    """

    name = "jpeg"
    knob_range: ClassVar[tuple[float, float]] = (1.0, 95.0)

    def _encode_knob(self, image: np.ndarray, knob: float) -> bytes:
        return _pillow_encode(image, "JPEG", quality=int(knob), optimize=True, subsampling=2)

    def _decode_bytes(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        return _pillow_decode(data, shape, "JPEG")


@register_codec("jpeg2000")
class Jpeg2000Codec(ClassicCodec):
    """JPEG 2000 (OpenJPEG via Pillow), 9/7 irreversible wavelet + colour transform
    (ITU-T T.800 Annex G: ``irreversible=True, mct=1``), raw codestream (no JP2 box).

    knob: the rate in bpp asked of OpenJPEG's own rate allocator, in [0.01, 24]
    (continuous). OpenJPEG does not count all header bytes, so the bisection still
    measures the real size.
    """

    name = "jpeg2000"
    knob_range: ClassVar[tuple[float, float]] = (0.01, 24.0)
    integer_knob = False
    knob_name = "layer rate (bpp)"

    def _encode_knob(self, image: np.ndarray, knob: float) -> bytes:
        return _pillow_encode(
            image, "JPEG2000", irreversible=True, mct=1, no_jp2=True,
            quality_mode="rates", quality_layers=[24.0 / knob],
        )

    def _decode_bytes(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        return _pillow_decode(data, shape, "JPEG2000")


@register_codec("webp")
class WebpCodec(ClassicCodec):
    """Lossy WebP (libwebp via Pillow, VP8 intra). knob: quality in [0, 100];
    ``method`` (0 fast .. 6 best) trades encoder time for size."""

    name = "webp"
    knob_range: ClassVar[tuple[float, float]] = (0.0, 100.0)

    def __init__(self, method: int = 4) -> None:
        if method not in range(7):
            raise ValueError(f"webp method {method!r} must be an integer in [0, 6]")
        self.method = method

    def _encode_knob(self, image: np.ndarray, knob: float) -> bytes:
        return _pillow_encode(image, "WEBP", quality=int(knob), method=self.method)

    def _decode_bytes(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        return _pillow_decode(data, shape, "WEBP")


@register_codec("avif")
class AvifCodec(ClassicCodec):
    """AVIF (AV1 intra via libavif, Pillow built-in), 4:2:0. knob: quality in [0, 100];
    ``speed`` (0 slow .. 10 fast) trades encoder time for size."""

    name = "avif"
    knob_range: ClassVar[tuple[float, float]] = (0.0, 100.0)

    def __init__(self, speed: int = 8) -> None:
        if speed not in range(11):
            raise ValueError(f"avif speed {speed!r} must be an integer in [0, 10]")
        self.speed = speed

    def _encode_knob(self, image: np.ndarray, knob: float) -> bytes:
        return _pillow_encode(image, "AVIF", quality=int(knob), speed=self.speed, max_threads=1)

    def _decode_bytes(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        return _pillow_decode(data, shape, "AVIF")


@register_codec("hevc")
class HevcCodec(ClassicCodec):
    """HEVC intra (x265 encoder, libde265 decoder) in a HEIF file via pillow-heif:
    our stand-in for BPG. knob: quality in [0, 100]; ``preset`` is x265's speed preset.
    """

    name = "hevc"
    knob_range: ClassVar[tuple[float, float]] = (0.0, 100.0)
    _PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")

    def __init__(self, preset: str = "fast") -> None:
        if preset not in self._PRESETS:
            raise ValueError(f"hevc preset {preset!r} must be one of {self._PRESETS}")
        self.preset = preset

    def _encode_knob(self, image: np.ndarray, knob: float) -> bytes:
        heif = pillow_heif.from_bytes("RGB", (image.shape[1], image.shape[0]), image.tobytes())
        buf = io.BytesIO()
        heif.save(buf, quality=int(knob), enc_params={"preset": self.preset})
        return buf.getvalue()

    def _decode_bytes(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        if heif.size != (shape[1], shape[0]) or heif.mode != "RGB":
            raise ValueError(
                f"declared {heif.mode} size {heif.size}, expected RGB {(shape[1], shape[0])}")
        return np.asarray(heif[0])[..., :3]


@register_codec("jpegxl")
class JpegXlCodec(ClassicCodec):
    """JPEG XL (libjxl via imagecodecs), VarDCT mode.

    knob: Butteraugli distance in [0.1, 25] (continuous; *smaller* is better quality,
    1.0 is visually lossless). ``effort`` is libjxl's encoder effort (1 fast .. 9).
    """

    name = "jpegxl"
    knob_range: ClassVar[tuple[float, float]] = (0.1, 25.0)
    integer_knob = False
    knob_increases_rate = False
    knob_name = "distance"

    def __init__(self, effort: int = 5) -> None:
        if effort not in range(1, 10):
            raise ValueError(f"jpegxl effort {effort!r} must be an integer in [1, 9]")
        self.effort = effort

    def _encode_knob(self, image: np.ndarray, knob: float) -> bytes:
        return bytes(
            imagecodecs.jpegxl_encode(image, distance=knob, effort=self.effort, numthreads=1)
        )

    def _decode_bytes(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        # Reject a wrong declared size before libjxl allocates whatever it says.
        declared = jxl_codestream_size(data)
        if declared != shape:
            raise ValueError(f"declared size {declared} != expected {shape}")
        return np.asarray(imagecodecs.jpegxl_decode(data, numthreads=1))


_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def jxl_codestream_size(data: bytes) -> tuple[int, int]:
    """(H, W) from the SizeHeader of a bare JPEG XL codestream (ISO/IEC 18181-1 D.2).

    Bits are read LSB first; U32 sizes use BitsOffset(9|13|18|30, 1). Raises
    ValueError on a missing signature (0xFF 0x0A) or a stream too short to hold it.
    """
    if data[:2] != b"\xff\x0a":
        raise ValueError("not a bare JPEG XL codestream (no FF 0A signature)")
    bits = int.from_bytes(data[2:16], "little")
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        value = (bits >> pos) & ((1 << n) - 1)
        pos += n
        return value

    def read_size(small: bool) -> int:
        if small:
            return (read(5) + 1) * 8
        return read((9, 13, 18, 30)[read(2)]) + 1

    small = bool(read(1))
    height = read_size(small)
    ratio = read(3)
    if ratio == 0:
        width = read_size(small)
    else:
        num, den = _JXL_RATIOS[ratio]
        width = height * num // den
    if len(data) < 2 + (pos + 7) // 8:
        raise ValueError("JPEG XL codestream truncated inside its size header")
    return height, width
