"""The PDSCH MCS tables of TS 38.214 5.1.3.1: MCS index -> (modulation, target code rate).

``LinkConfig(mcs_table="qam64", mcs_index=i)`` takes its modulation and target rate
``R = R_x1024 / 1024`` from these rows; the code is then resolved as for an explicit
``code_rate=R`` (k default 4096, or 3824 below rate 1/3; n the smallest whole-symbol
length with k / n <= R). Rows below the mother-code rate of the selected base graph are
sent with repetition (the circular buffer wraps, TS 38.212 5.4.2.1).

Reserved rows (modulation given, rate "reserved", used only for retransmissions) are not
listed: their index raises.
"""

from __future__ import annotations

#: table name -> rows (bits per symbol Q_m, target rate R x 1024), indexed by I_MCS.
MCS_TABLES: dict[str, tuple[tuple[int, float], ...]] = {
    # TS 38.214 Table 5.1.3.1-1 (MCS index table 1, up to 64-QAM), I_MCS 0..28
    "qam64": (
        (2, 120), (2, 157), (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526),
        (2, 602), (2, 679), (4, 340), (4, 378), (4, 434), (4, 490), (4, 553), (4, 616),
        (4, 658), (6, 438), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666), (6, 719),
        (6, 772), (6, 822), (6, 873), (6, 910), (6, 948),
    ),
    # TS 38.214 Table 5.1.3.1-2 (MCS index table 2, up to 256-QAM), I_MCS 0..27
    "qam256": (
        (2, 120), (2, 193), (2, 308), (2, 449), (2, 602), (4, 378), (4, 434), (4, 490),
        (4, 553), (4, 616), (4, 658), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666),
        (6, 719), (6, 772), (6, 822), (6, 873), (8, 682.5), (8, 711), (8, 754), (8, 797),
        (8, 841), (8, 885), (8, 916.5), (8, 948),
    ),
    # TS 38.214 Table 5.1.3.1-3 (MCS index table 3, low spectral efficiency), I_MCS 0..28
    "qam64LowSE": (
        (2, 30), (2, 40), (2, 50), (2, 64), (2, 78), (2, 99), (2, 120), (2, 157),
        (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526), (2, 602), (4, 340),
        (4, 378), (4, 434), (4, 490), (4, 553), (4, 616), (6, 438), (6, 466), (6, 517),
        (6, 567), (6, 616), (6, 666), (6, 719), (6, 772),
    ),
}
#: Table name -> Sionna's ``decode_mcs_index`` table_index (for the cross-check test).
SIONNA_TABLE_INDEX = {"qam64": 1, "qam256": 2, "qam64LowSE": 3}
_MODULATION_OF_QM = {2: "qpsk", 4: "16qam", 6: "64qam", 8: "256qam"}


def decode_mcs(table: str, index: int) -> tuple[str, float]:
    """(modulation name, target code rate R) of row ``index`` of ``table``.

    Raises ValueError naming the table or index and the allowed values.
    """
    if table not in MCS_TABLES:
        raise ValueError(f"mcs_table {table!r} not supported; choose one of "
                         f"{list(MCS_TABLES)}")
    rows = MCS_TABLES[table]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(rows):
        raise ValueError(f"mcs_index {index!r} must be an int in [0, {len(rows) - 1}] for "
                         f"mcs_table {table!r} (higher indices are reserved)")
    qm, r1024 = rows[index]
    return _MODULATION_OF_QM[qm], r1024 / 1024
