"""SNR definitions: the one place where dB becomes linear and Eb/N0 becomes Es/N0.

Convention (used everywhere in ``channels``)
-------------------------------------------
* Constellations have unit average energy, Es = 1.
* ``esno_db`` is Es/N0 in dB **per complex symbol**; the complex noise variance is
  ``no = N0 = 10 ** (-esno_db / 10)`` (``no / 2`` per real dimension).
* ``ebno_db`` is Eb/N0 per **information bit** of the code: Es = bits_per_symbol *
  code_rate * Eb, so ``esno_db = ebno_db + 10 log10(bits_per_symbol * code_rate)``.
  This is Sionna's ``ebnodb2no`` convention (the CRC bits count as information, as in
  Sionna); pass ``code_rate=(k - 24) / n`` to count payload bits only.
"""

from __future__ import annotations

import math


def db_to_linear(value_db: float) -> float:
    """10 ** (value_db / 10): the only dB -> linear conversion of the package."""
    return 10.0 ** (value_db / 10.0)


def noise_variance(esno_db: float) -> float:
    """Complex noise variance no = N0 for unit-energy symbols at Es/N0 = ``esno_db``."""
    check_snr_db(esno_db, "esno_db")
    return 1.0 / db_to_linear(esno_db)


def esno_db_from_ebno_db(ebno_db: float, bits_per_symbol: int, code_rate: float) -> float:
    """Es/N0 in dB from Eb/N0 in dB: ``ebno_db + 10 log10(bits_per_symbol * code_rate)``.

    Parameters
    ----------
    ebno_db : float
        Eb/N0 per information bit, dB.
    bits_per_symbol : int
        Coded bits per complex symbol (2, 4, 6, 8 for QPSK .. 256-QAM).
    code_rate : float
        Information bits per coded bit, in (0, 1].
    """
    check_snr_db(ebno_db, "ebno_db")
    if isinstance(bits_per_symbol, bool) or not isinstance(bits_per_symbol, int) \
            or bits_per_symbol < 1:
        raise ValueError(f"bits_per_symbol {bits_per_symbol!r} must be a positive int")
    if not (isinstance(code_rate, (int, float)) and 0.0 < code_rate <= 1.0):
        raise ValueError(f"code_rate {code_rate!r} outside (0, 1]")
    return float(ebno_db) + 10.0 * math.log10(bits_per_symbol * code_rate)


def check_snr_db(value: float, name: str) -> float:
    """Return ``value`` as float, or raise ValueError if it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            raise ValueError(f"{name} {value!r} is not a number; expected a finite dB value") \
                from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {value!r} is not finite; expected a finite dB value")
    return float(value)
