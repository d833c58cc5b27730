"""LinkConfig validation and resolution, the Eb/N0 conversion, base-graph rules vs Sionna."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from channels import LinkConfig, esno_db_from_ebno_db
from channels.snr import db_to_linear, noise_variance


def test_defaults_resolve_to_rate_half_k4096() -> None:
    cfg = LinkConfig()
    assert (cfg.modulation, cfg.k, cfg.n, cfg.code_rate) == ("16qam", 4096, 8192, 0.5)
    assert cfg.block_payload_bytes == 509 and cfg.symbols_per_block == 2048


@pytest.mark.parametrize(
    ("kwargs", "k", "n"),
    [
        (dict(code_rate=0.5, modulation="qpsk"), 4096, 8192),
        (dict(code_rate=1 / 3, modulation="64qam"), 4096, 12288),
        (dict(code_rate=0.25), 3824, 15296),  # low rate: default k stays on BG2
        (dict(code_rate=0.75, k=1024, modulation="256qam"), 1024, 1368),
        (dict(k=1024, n=3072), 1024, 3072),
        (dict(code_rate=0.5, k=1024, n=2048), 1024, 2048),
        (dict(coding="uncoded", k=2048), 2048, 2048),
    ],
)
def test_resolution(kwargs: dict, k: int, n: int) -> None:
    cfg = LinkConfig(**kwargs)
    assert (cfg.k, cfg.n) == (k, n)
    assert cfg.code_rate == pytest.approx(k / n if cfg.coding == "ldpc" else 1.0)
    assert cfg.n % cfg.bits_per_symbol == 0 or cfg.coding == "uncoded"
    if "code_rate" in kwargs and cfg.coding == "ldpc":
        assert cfg.code_rate <= kwargs["code_rate"] + 1e-12
    assert LinkConfig.from_dict(cfg.to_dict()) == cfg  # resolved configs round-trip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(modulation="8psk"), "modulation '8psk' not supported"),
        (dict(code_rate=0.97), r"code rate 0.97 outside the 5G LDPC range \[0.025, 0.95\]"),
        (dict(code_rate=0.01), "outside the 5G LDPC range"),
        (dict(code_rate="0.5"), "code rate '0.5' must be a number"),
        (dict(code_rate=float("nan")), "outside the 5G LDPC range"),
        (dict(k=1004, n=2008), "k 1004 must be a multiple of 8"),
        (dict(k=8456, n=10000), r"k 8456 must be an int in \[32, 8448\]"),
        (dict(k=1024, n=2046), "multiple of bits_per_symbol=4"),
        (dict(k=4096, n=13000, decoder="sionna"), "Sionna 2.2 refuses"),
        (dict(k=3824, n=20000, decoder="sionna"), "needs repetition"),
        (dict(mcs_table="qam16"), "give mcs_table and mcs_index together"),
        (dict(mcs_table="qam16", mcs_index=3), "mcs_table 'qam16' not supported"),
        (dict(mcs_table="qam256", mcs_index=28), r"mcs_index 28 must be an int in \[0, 27\]"),
        (dict(mcs_table="qam64", mcs_index=3, modulation="16qam"), "disagrees with"),
        (dict(mcs_table="qam64", mcs_index=3, code_rate=0.5), "leave code_rate out"),
        (dict(n_rnti=70000), r"n_rnti 70000 must be an int in \[0, 65535\]"),
        (dict(n_id=1024), r"n_id 1024 must be an int in \[0, 1023\]"),
        (dict(scrambling="yes"), "scrambling 'yes' must be true or false"),
        (dict(harq={"max_transmissions": 0}), r"harq.max_transmissions 0 must be an int"),
        (dict(harq={"combining": "soft"}), r"harq.combining 'soft' not supported"),
        (dict(harq={"rounds": 2}), "harq: unknown key 'rounds'"),
        (dict(harq=2), "harq must be a mapping"),
        (dict(harq={}, coding="uncoded"), "harq needs coding='ldpc'"),
        (dict(k=4096, n=16384), "base graph 2, which allows k <= 3840"),
        (dict(code_rate=0.5, k=1024, n=4096), "exclusive with"),
        (dict(code_rate=0.5, n=4096), "give code_rate with k"),
        (dict(k=1024), "LDPC needs code_rate, or k and n"),
        (dict(bp_iterations=0), r"bp_iterations 0 must be an int in \[1, 200\]"),
        (dict(decoder="turbo"), "decoder 'turbo' not supported"),
        (dict(cn_update="boxplus-phi"), r"cn_update \(decoder='fast'\) 'boxplus-phi'"),
        (dict(cn_schedule="flooding"), r"cn_schedule \(decoder='fast'\) 'flooding'"),
        (dict(channel="rician"), "channel 'rician' not supported"),
        (dict(block_symbols=100), "only used with channel='rayleigh-block'"),
        (dict(channel="rayleigh-block", block_symbols=0), "block_symbols 0"),
        (dict(device="tpu"), "device 'tpu'"),
        (dict(device="cuda"), "needs decoder='sionna'"),
        (dict(coding="uncoded", code_rate=0.5), "must be None or 1"),
        (dict(demapping="exact"), "demapping 'exact' not supported"),
    ],
)
def test_bad_config_names_value_and_allowed(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinkConfig(**kwargs)


def test_numpy_scalars_are_accepted() -> None:
    cfg = LinkConfig(code_rate=np.float32(0.5), k=np.int64(1024), bp_iterations=np.int32(10))
    assert (cfg.k, cfg.n, cfg.bp_iterations) == (1024, 2048, 10)
    assert type(cfg.k) is int and type(cfg.code_rate) is float


def test_from_dict_rejects_unknown_key_with_nearest() -> None:
    with pytest.raises(ValueError, match="unknown key 'modulaton'; did you mean 'modulation'"):
        LinkConfig.from_dict({"modulaton": "qpsk"})
    cfg = LinkConfig.from_dict({"modulation": "qpsk", "code_rate": 0.5, "channel": "awgn"})
    assert cfg.bits_per_symbol == 2


def test_sionna_decoder_accepts_exact_bp() -> None:
    cfg = LinkConfig(decoder="sionna", cn_update="boxplus-phi", cn_schedule="flooding")
    assert cfg.cn_update == "boxplus-phi"


def test_ebno_conversion_matches_sionna_ebnodb2no() -> None:
    from sionna.phy.utils import ebnodb2no

    for ebno_db, m, r in [(0.0, 2, 0.5), (3.7, 4, 0.5), (-2.0, 6, 1 / 3), (10.0, 8, 0.9)]:
        esno_db = esno_db_from_ebno_db(ebno_db, m, r)
        no = float(ebnodb2no(ebno_db, m, r))
        assert esno_db == pytest.approx(-10 * math.log10(no), abs=1e-5)
        assert noise_variance(esno_db) == pytest.approx(no, rel=1e-5)
    assert db_to_linear(10.0) == pytest.approx(10.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "6 dB", None])
def test_snr_conversion_rejects_non_finite(bad: object) -> None:
    with pytest.raises(ValueError, match="ebno_db"):
        esno_db_from_ebno_db(bad, 4, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="code_rate"):
        esno_db_from_ebno_db(1.0, 4, 1.5)


def test_validation_agrees_with_sionna_encoder_on_a_grid() -> None:
    """Every (k, n) we accept for decoder='sionna' Sionna accepts and vice versa
    (k % 8 == 0, n % m == 0); the fast decoder accepts a superset (repetition)."""
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    rng = np.random.default_rng(0)
    ks = np.concatenate([[32, 288, 296, 3824, 3832, 3840, 3848, 8448],
                         8 * rng.integers(4, 1057, 30)])
    checked = 0
    for k in ks:
        for rate in (0.19, 0.21, 0.24, 0.26, 0.3, 0.34, 0.5, 0.67, 0.7, 0.94, 0.96):
            n = 4 * round(int(k) / rate / 4)
            try:
                LinkConfig(k=int(k), n=n, decoder="sionna")
                ours = True
            except ValueError:
                ours = False
            if ours:
                LinkConfig(k=int(k), n=n)  # the fast chain takes every code Sionna takes
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    LDPC5GEncoder(int(k), n)
                theirs = True
            except ValueError:
                theirs = False
            assert ours == theirs, (int(k), n)
            checked += ours
    assert checked > 100  # not vacuous


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({"code_rate": "0.5"}, r"^links\[0\]: code_rate '0.5' must be a number, not a str$"),
        ({"k": 1024.0, "n": 2048}, r"^links\[0\]: k 1024.0 must be an int, not a float$"),
        ({"scrambling": "yes"}, "scrambling 'yes' must be true or false"),
        ({"n_id": True}, "n_id True must be an int, not a bool"),
        ({"device": 0}, "device 0 must be a string"),
        ({"harq": {"rounds": 2}}, "harq: unknown key 'rounds'"),
        ({"harq": {"max_transmision": 2}}, "did you mean 'max_transmissions'"),
        ({"harq": 2}, "harq must be a mapping"),
        ({"priority": {"channel": "awgn"}}, "priority: key 'channel' cannot be set here"),
        ({"priority": {"code_rat": 0.3}}, "priority: unknown key 'code_rat'; did you mean"),
        ({"priority": {"code_rate": "x"}}, "priority.code_rate 'x' must be a number"),
        ({"modulation": "8psk"}, r"^links\[0\]: modulation '8psk' not supported"),
    ],
)
def test_from_dict_is_strict_and_one_line(d: dict, message: str) -> None:
    """pydantic checks types strictly and refuses unknown keys at every level; the
    constructor's value rules follow; every error is one line starting with ``where``."""
    with pytest.raises(ValueError, match=message) as info:
        LinkConfig.from_dict(d, where="links[0]")
    assert "\n" not in str(info.value) and str(info.value).startswith("links[0]: ")


def test_from_dict_accepts_numpy_scalars_and_ints_for_rates() -> None:
    cfg = LinkConfig.from_dict({"k": np.int64(1024), "code_rate": np.float32(0.5),
                                "scrambling": np.bool_(False)})
    assert (cfg.k, cfg.n, cfg.scrambling) == (1024, 2048, False)
    assert LinkConfig.from_dict({"coding": "uncoded", "code_rate": 1}).code_rate == 1.0


def test_bare_cuda_becomes_cuda0_and_round_trips() -> None:
    """Sionna 2.2 refuses device 'cuda'; the config pins the first GPU."""
    cfg = LinkConfig(decoder="gpu", device="cuda")
    assert cfg.device == "cuda:0"
    assert LinkConfig.from_dict({"decoder": "sionna", "device": "cuda:1"}).device == "cuda:1"
    again = LinkConfig.from_dict(cfg.to_dict())
    assert again == cfg and hash(again) == hash(cfg)
    with pytest.raises(ValueError, match="device 'cuda:x'"):
        LinkConfig(decoder="gpu", device="cuda:x")
