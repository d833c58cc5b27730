"""MCS tables of TS 38.214, repetition (circular-buffer wrap) and the 38.212 base-graph rule."""

from __future__ import annotations

import numpy as np
import pytest

from channels import Link, LinkConfig
from channels.ldpc import build_code, circular_buffer_bits, rate_match_positions
from channels.mcs import MCS_TABLES, SIONNA_TABLE_INDEX, decode_mcs
from channels.sweep import wilson_interval

ALL_ROWS = [(t, i) for t, rows in MCS_TABLES.items() for i in range(len(rows))]


def test_tables_equal_sionna_decode_mcs_index() -> None:
    from sionna.phy.nr.utils import decode_mcs_index

    for table, index in ALL_ROWS:
        modulation, rate = decode_mcs(table, index)
        qm, r = decode_mcs_index(index, SIONNA_TABLE_INDEX[table], is_pusch=False)
        assert (LinkConfig(mcs_table=table, mcs_index=index).bits_per_symbol, rate) \
            == (int(qm), pytest.approx(float(r), abs=1e-6)), (table, index, modulation)
    assert len(ALL_ROWS) == 29 + 28 + 29


def test_every_row_round_trips_noiselessly() -> None:
    """Every row of every table, default k, base graph by TS 38.212 7.2.2, repetition
    where the rate is below the mother code's: two blocks come back bit-exact."""
    repeated = 0
    for table, index in ALL_ROWS:
        cfg = LinkConfig(mcs_table=table, mcs_index=index)
        _, target = decode_mcs(table, index)
        assert cfg.code_rate is not None and target - 0.01 < cfg.code_rate <= target
        assert cfg.k is not None and cfg.n is not None
        code = build_code(cfg.k, cfg.n, cfg.bits_per_symbol)
        bg2 = cfg.k <= 292 or (cfg.k <= 3824 and target <= 0.67) or target <= 0.25
        assert code.base_graph == ("bg2" if bg2 else "bg1"), (table, index)
        repeated += cfg.n > circular_buffer_bits(cfg.k, cfg.n)
        link = Link(cfg, num_threads=1)
        payload = np.random.default_rng(index).integers(0, 256, 2 * link.block_payload_bytes - 5,
                                                        dtype=np.uint8)
        r = link.transmit([payload], 60.0, [index])[0]
        assert np.array_equal(r.data, payload) and r.block_errors == 0, (table, index)
    assert repeated == 3 + 2 + 9  # rates below ~0.2: 0-2 (qam64), 0-1 (qam256), 0-8 (LowSE)


def test_repetition_wraps_the_circular_buffer_and_adds_up() -> None:
    """qam64LowSE row 0 (QPSK, R = 30/1024) sends the buffer ~6.8 times: positions wrap,
    and the decoder adds the copies (it decodes ~8 dB below where rate 1/5 works)."""
    cfg = LinkConfig(mcs_table="qam64LowSE", mcs_index=0)
    assert cfg.k is not None and cfg.n is not None
    code = build_code(cfg.k, cfg.n, cfg.bits_per_symbol)
    buffer = circular_buffer_bits(cfg.k, cfg.n)
    pos = rate_match_positions(code)
    assert cfg.n > 6 * buffer and np.unique(pos).size == buffer  # every buffer bit, repeated
    assert code.num_layers == 42  # all BG2 rows are live
    low = Link(cfg, num_threads=1)
    ref = Link(LinkConfig(modulation="qpsk", code_rate=0.2, k=cfg.k), num_threads=1)
    payload = np.random.default_rng(0).integers(0, 256, 20 * low.block_payload_bytes,
                                                dtype=np.uint8)
    assert low.transmit([payload], -11.0, [1])[0].block_errors <= 1
    assert ref.transmit([payload], -11.0, [1])[0].block_errors == 20  # not vacuous


def test_explicit_form_and_mcs_form_agree() -> None:
    a = LinkConfig(mcs_table="qam256", mcs_index=20)
    b = LinkConfig(modulation="256qam", code_rate=682.5 / 1024)
    assert (a.modulation, a.k, a.n, a.code_rate) == (b.modulation, b.k, b.n, b.code_rate)
    assert LinkConfig.from_dict(a.to_dict()) == a
    assert "mcs:qam256:20" in a.describe()


def test_low_rates_on_bg1_repeat_instead_of_being_refused() -> None:
    """Rates in (0.25, 1/3) with k > 3824 select BG1 (TS 38.212 7.2.2) and now repeat."""
    cfg = LinkConfig(modulation="qpsk", code_rate=0.3, k=4096)
    assert cfg.k is not None and cfg.n is not None
    assert build_code(cfg.k, cfg.n, 2).base_graph == "bg1"
    assert cfg.n > circular_buffer_bits(cfg.k, cfg.n)
    payload = np.arange(1000, dtype=np.uint8)
    r = Link(cfg, num_threads=1).transmit([payload], 40.0, [0])[0]
    assert np.array_equal(r.data, payload)


# (table, index, Es/N0 dB on the waterfall at k = 1024, fast BLER 0.2-0.7)
SIONNA_ROWS = [
    ("qam64", 5, -1.0), ("qam64", 12, 5.0), ("qam64", 20, 11.5),
    ("qam256", 3, 0.0), ("qam256", 9, 7.75), ("qam256", 22, 19.75),
    ("qam64LowSE", 10, -2.0), ("qam64LowSE", 16, 4.0), ("qam64LowSE", 26, 13.25),
]


def _compare_with_sionna(table: str, index: int, esno_db: float, blocks: int) -> None:
    counts = []
    for decoder in ("fast", "sionna"):
        link = Link(LinkConfig(mcs_table=table, mcs_index=index, k=1024, decoder=decoder),
                    num_threads=1)
        payload = np.random.default_rng(index).integers(
            0, 256, blocks * link.block_payload_bytes, dtype=np.uint8)
        r = link.transmit([payload], esno_db, [index])[0]
        counts.append((r.block_errors, r.num_blocks))
    (lo_f, hi_f), (lo_s, hi_s) = (wilson_interval(*c) for c in counts)
    assert lo_f <= hi_s and lo_s <= hi_f, (table, index, counts)
    assert 0 < counts[0][0] < blocks, counts  # on the waterfall, not vacuous


def test_mcs_bler_agrees_with_sionna_one_row() -> None:
    """Fast tier of the comparison below: one row, same noise for both chains."""
    _compare_with_sionna("qam64", 12, 5.0, 32)


@pytest.mark.slow
@pytest.mark.parametrize(("table", "index", "esno_db"), SIONNA_ROWS)
def test_mcs_bler_agrees_with_sionna(table: str, index: int, esno_db: float) -> None:
    """Three rows per table: BLER of the fast chain and of Sionna's chain (mapper,
    demapper, LDPC5GEncoder/Decoder, layered offset min-sum) have overlapping intervals."""
    _compare_with_sionna(table, index, esno_db, 200)
