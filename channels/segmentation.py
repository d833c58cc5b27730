"""Payload bytes <-> CRC-protected code blocks, and the byte ranges a failed block loses.

Block format (per-block CRC-24B, bits MSB-first within each byte)
-----------------------------------------------------------------
::

    payload bytes  0 ........ B-1 | B ....... 2B-1 | ... | (last, zero-padded to B)
                        |                 |                        |
    code block j:  [ B payload bytes | CRC24B over them (3 bytes) ]  = k bits

* ``B = (k - 24) / 8`` payload bytes per block (k is a multiple of 8), so payload byte
  ``i`` lies in block ``i // B`` and a failed block loses exactly the byte range
  ``[j*B, min((j+1)*B, length))``.
* The last block is zero-padded to B bytes before its CRC; the receiver knows the
  payload length and drops the padding. Overhead: 24 CRC bits per block plus the padding.
* CRC24B: g(D) = D^24 + D^23 + D^6 + D^5 + D + 1, zero initial state, no final XOR,
  parity bits appended most significant first (TS 38.212 5.1). Same as Sionna's
  ``CRCEncoder("CRC24B")``.
"""

from __future__ import annotations

import numba
import numpy as np

CRC24B_POLY = 0x800063  # TS 38.212 5.1, g_CRC24B without the D^24 term
CRC_BYTES = 3


def _crc_table(poly: int) -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for b in range(256):
        c = b << 16
        for _ in range(8):
            c = ((c << 1) ^ poly) if c & 0x800000 else (c << 1)
        table[b] = c & 0xFFFFFF
    return table


_TABLE = _crc_table(CRC24B_POLY)


@numba.njit(cache=True, nogil=True)
def _crc24_rows(data, table, out):
    for r in range(data.shape[0]):
        c = np.uint32(0)
        for i in range(data.shape[1]):
            c = ((c << np.uint32(8)) & np.uint32(0xFFFFFF)) ^ table[((c >> np.uint32(16))
                                                                      ^ data[r, i]) & 0xFF]
        out[r] = c


def crc24b(data: np.ndarray) -> np.ndarray:
    """CRC24B of each row.

    Input
    -----
    data : [N, m] uint8    bytes, bits MSB-first
    Output
    ------
    crc : [N] uint32       remainder in the low 24 bits (bit 23 = first parity bit)
    """
    data = np.ascontiguousarray(data, dtype=np.uint8)
    if data.ndim != 2:
        raise ValueError(f"crc24b expects a [N, m] uint8 array, got shape {data.shape}")
    out = np.empty(data.shape[0], dtype=np.uint32)
    _crc24_rows(data, _TABLE, out)
    return out


class BlockLayout:
    """Segmentation of byte payloads into code blocks of ``k`` bits (CRC included).

    Parameters
    ----------
    k : int
        Bits per code block, a multiple of 8 and >= 32.
    """

    def __init__(self, k: int) -> None:
        if k % 8 or k < 8 * (CRC_BYTES + 1):
            raise ValueError(f"block size k={k} must be a multiple of 8 and >= 32")
        self.k = k
        self.block_bytes = k // 8
        self.payload_bytes = self.block_bytes - CRC_BYTES

    def num_blocks(self, num_bytes: int) -> int:
        """Code blocks needed for ``num_bytes`` payload bytes (0 for 0)."""
        return -(-int(num_bytes) // self.payload_bytes)

    def segment(self, payload: np.ndarray) -> np.ndarray:
        """Payload [L] uint8 -> blocks [ceil(L/B), k/8] uint8 (payload, zero pad, CRC)."""
        nb = self.num_blocks(payload.size)
        body = np.zeros(nb * self.payload_bytes, dtype=np.uint8)
        body[: payload.size] = payload
        blocks = np.zeros((nb, self.block_bytes), dtype=np.uint8)
        blocks[:, : self.payload_bytes] = body.reshape(nb, self.payload_bytes)
        crc = crc24b(blocks[:, : self.payload_bytes])
        blocks[:, -3] = (crc >> 16) & 0xFF
        blocks[:, -2] = (crc >> 8) & 0xFF
        blocks[:, -1] = crc & 0xFF
        return blocks

    def crc_ok(self, blocks: np.ndarray) -> np.ndarray:
        """[N, k/8] uint8 received blocks -> [N] bool, True where the CRC checks."""
        return crc24b(blocks) == 0  # remainder of message + parity is zero

    def byte_range(self, block: int, num_bytes: int) -> tuple[int, int]:
        """Payload byte range [start, stop) carried by ``block``."""
        start = block * self.payload_bytes
        return start, min(start + self.payload_bytes, num_bytes)

    def lost_ranges(self, failed: np.ndarray, num_bytes: int) -> tuple[tuple[int, int], ...]:
        """Merged byte ranges [start, stop) of the blocks flagged in ``failed`` ([nb] bool)."""
        out: list[tuple[int, int]] = []
        for j in np.flatnonzero(failed):
            start, stop = self.byte_range(int(j), num_bytes)
            if out and out[-1][1] == start:
                out[-1] = (out[-1][0], stop)
            else:
                out.append((start, stop))
        return tuple(out)
