"""The BER/BLER sweep (stopping rules, Wilson intervals) and ``semcomm link-sweep``."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from channels import Link, LinkConfig
from channels.cli import parse_snr_list
from channels.sweep import ber_bler_sweep, wilson_interval

SMALL = LinkConfig(modulation="qpsk", k=256, n=512)


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    lo, hi = wilson_interval(81, 263)
    assert (lo, hi) == (pytest.approx(0.2553, abs=1e-3), pytest.approx(0.3662, abs=1e-3))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="errors <= trials"):
        wilson_interval(5, 4)


def test_sweep_stops_on_errors_or_cap_and_is_deterministic() -> None:
    points = ber_bler_sweep(SMALL, [-2.0, 3.0, 12.0], target_block_errors=20,
                            max_blocks=300, seed=3, batch_blocks=16)
    low, mid, high = points
    assert low.block_errors >= 20 and low.num_blocks == 32  # 2 batches, all failed
    assert high.num_blocks == 300 and high.block_errors == 0  # capped, exact count
    assert low.bler_low <= low.bler <= low.bler_high
    assert high.bler_high == pytest.approx(wilson_interval(0, 300)[1])
    assert low.ber > mid.ber >= high.ber
    assert high.channel_uses == 300 * 256 and high.num_bits == 300 * 29 * 8
    assert low.ebno_db == pytest.approx(low.esno_db - 10 * __import__("math").log10(2 * 0.5))
    again = ber_bler_sweep(SMALL, [3.0], target_block_errors=20, max_blocks=300, seed=3,
                           batch_blocks=16)[0]
    assert (again.block_errors, again.bit_errors, again.num_blocks) == \
        (mid.block_errors, mid.bit_errors, mid.num_blocks)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(esno_db_list=[]), "esno_db_list is empty"),
        (dict(esno_db_list=[float("nan")]), r"esno_db_list\[0\] nan is not finite"),
        (dict(esno_db_list=[1.0], target_block_errors=0), "target_block_errors 0"),
        (dict(esno_db_list=[1.0], max_blocks=-5), "max_blocks -5"),
        (dict(esno_db_list=[1.0], seed=-1), "seed -1"),
    ],
)
def test_sweep_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ber_bler_sweep(SMALL, **kwargs)


def test_parse_snr_list() -> None:
    assert parse_snr_list("0:0.5:2") == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert parse_snr_list("5.5:0.25:6") == [5.5, 5.75, 6.0]
    assert parse_snr_list("1,2.5,-3") == [1.0, 2.5, -3.0]
    assert parse_snr_list("7") == [7.0]
    for bad in ("1:0:3", "3:1:1", "a:b:c", "nan", "1,,2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_snr_list(bad)


def test_cli_prints_table_and_writes_csv_and_json(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from semcomm.cli import main

    base = ["link-sweep", "--modulation", "qpsk", "--k", "256", "--n", "512", "--snr",
            "0:2:4", "--target-block-errors", "10", "--max-blocks", "64", "--seed", "1"]
    assert main([*base, "--out", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "BLER 95% CI" in out and "k=256 n=512" in out and out.count("\n") >= 5
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [float(r["esno_db"]) for r in rows] == [0.0, 2.0, 4.0]
    assert all(float(r["bler_low"]) <= float(r["bler"]) <= float(r["bler_high"]) for r in rows)
    ebno = [a if a != "--snr" else "--ebno" for a in base]
    assert main([*ebno, "--out", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["schema_version"] == 1 and summary["config"]["k"] == 256
    assert summary["points"][1]["ebno_db"] == pytest.approx(2.0)
    assert summary["versions"]["sionna-no-rt"] is not None
    assert main(["link-sweep", "--snr", "1", "--code-rate", "0.99"]) == 2
    assert "code rate 0.99 outside" in capsys.readouterr().err


def test_cli_reports_argument_errors_before_the_table(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    from semcomm.cli import main

    assert main(["link-sweep", "--snr", "1", "--target-block-errors", "0"]) == 2
    captured = capsys.readouterr()
    assert "target_block_errors 0" in captured.err and "BLER" not in captured.out
    assert main(["link-sweep", "--snr", "1", "--mcs-table", "qam64", "--mcs-index", "40"]) == 2
    assert "mcs_index 40 must be an int in [0, 28]" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --snr and --ebno are exclusive
        main(["link-sweep", "--snr", "1", "--ebno", "2"])


def test_cli_mcs_and_harq(capsys: pytest.CaptureFixture[str]) -> None:
    from semcomm.cli import main

    assert main(["link-sweep", "--mcs-table", "qam64", "--mcs-index", "3", "--k", "256",
                 "--harq", "2", "--combining", "ir", "--ebno=-3,8", "--max-blocks", "32",
                 "--target-block-errors", "5"]) == 0
    out = capsys.readouterr().out
    assert "qpsk" in out and "mcs=qam64:3" in out and "harq=2xir" in out


def test_zero_d_numpy_snr_works() -> None:
    link = Link(SMALL, num_threads=1)
    payload = np.arange(100, dtype=np.uint8)
    a = link.transmit([payload], np.array(30.0), [1])[0]
    assert np.array_equal(a.data, payload)
    (p,) = ber_bler_sweep(SMALL, np.array(30.0), max_blocks=8, batch_blocks=8)
    assert p.esno_db == 30.0 and p.block_errors == 0


def test_wilson_lower_bound_is_exactly_zero_at_zero_errors() -> None:
    for trials in (1, 7, 300, 10**6, 12345678):
        assert wilson_interval(0, trials)[0] == 0.0
        assert wilson_interval(trials, trials)[1] == 1.0
