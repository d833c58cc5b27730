"""Token grids and float side information <-> bytes: entropy coding and packets.

Learned codecs hand over codebook indices at kept positions (:class:`TokenGrid`) and
scalar-quantized float vectors (:class:`FloatBlock`); :func:`encode_payload` turns them
into bytes with a range coder (constriction) and static priors learned from training
data (:class:`Prior`), optionally framed in independently decodable packets sized to the
link's code blocks. :func:`decode_payload` inverts it given the out-of-band
:class:`PayloadSpec`; lost or corrupt packets come back as *missing* positions, never as
garbage or an exception.
"""

from semcomm.bitstream.blocks import (
    FORMAT_VERSION,
    DecodedFloats,
    DecodedGrid,
    DecodedPayload,
    FloatBlock,
    FloatSpec,
    GridSpec,
    PacketReport,
    PayloadSpec,
    TokenGrid,
)
from semcomm.bitstream.packets import decode_payload, encode_packets, encode_payload
from semcomm.bitstream.prior import Prior, ScalarQuantizer

__all__ = [
    "FORMAT_VERSION",
    "DecodedFloats",
    "DecodedGrid",
    "DecodedPayload",
    "FloatBlock",
    "FloatSpec",
    "GridSpec",
    "PacketReport",
    "PayloadSpec",
    "Prior",
    "ScalarQuantizer",
    "TokenGrid",
    "decode_payload",
    "encode_packets",
    "encode_payload",
]
