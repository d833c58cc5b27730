"""Bits <-> bits over a simulated 5G NR link (LDPC + QAM + flat channel, via Sionna).

The only package of the project that imports Sionna. Nothing here knows about images:
``Link.transmit`` takes NumPy byte payloads and returns NumPy byte payloads plus the
byte ranges whose code blocks failed their CRC. See ``docs/channels.md``.
"""

from channels.config import HarqConfig, LinkConfig
from channels.link import Link, LinkResult
from channels.snr import esno_db_from_ebno_db

__all__ = ["HarqConfig", "Link", "LinkConfig", "LinkResult", "esno_db_from_ebno_db"]
