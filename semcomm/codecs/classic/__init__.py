"""Classic image codecs sent over the same link as the learned ones.

Importing this package registers ``jpeg``, ``jpeg2000``, ``webp``, ``hevc`` (HEVC-intra
in HEIF, our BPG stand-in), ``avif`` and ``jpegxl`` in :mod:`semcomm.codecs.registry`.
"""

from semcomm.codecs.classic._core import ClassicCodec, check_image, rate_unreachable
from semcomm.codecs.classic.formats import (
    AvifCodec,
    HevcCodec,
    Jpeg2000Codec,
    JpegCodec,
    JpegXlCodec,
    WebpCodec,
)

__all__ = [
    "AvifCodec",
    "ClassicCodec",
    "HevcCodec",
    "Jpeg2000Codec",
    "JpegCodec",
    "JpegXlCodec",
    "WebpCodec",
    "check_image",
    "rate_unreachable",
]
