"""Semantic UEP by class: names, tiles, packet cuts, SQ-GAN's split payload, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semcomm import metrics
from semcomm.bitstream import Prior, TokenGrid, decode_payload, encode_packets, encode_payload
from semcomm.bitstream.blocks import PayloadSpec
from semcomm.codecs import class_priority as cp
from semcomm.codecs.base import RatePoint, ReceivedPayload
from semcomm.codecs.sqgan.codec import DEFAULT_CHECKPOINT, SQGANCodec
from semcomm.data import CLASS_NAMES, build_dataset

NAMED = ("person", "rider", "traffic sign")


def test_class_names_validated_with_the_allowed_list() -> None:
    assert cp.class_ids(["rider", "person", "person"]) == (11, 12)
    with pytest.raises(ValueError, match="unknown class 'persn'; did you mean 'person'") as err:
        cp.class_ids(["persn"])
    assert "road, sidewalk" in str(err.value) and "\n" not in str(err.value)
    for bad in ([], "person", None):
        with pytest.raises(ValueError, match="non-empty list of class names"):
            cp.class_ids(bad)  # type: ignore[arg-type]


def test_tile_hits_and_margin() -> None:
    labels = np.full((32, 64), 0, np.uint8)  # 4 x 8 tiles of 8 x 8
    labels[9, 17] = 11  # one person pixel in tile (1, 2)
    labels[31, 63] = 255  # void never counts
    hits = cp.tile_hits(labels, (11,), (4, 8))
    assert hits.sum() == 1 and hits[1, 2]
    grown = cp.tile_hits(labels, (11,), (4, 8), margin=1)
    assert grown.sum() == 9 and grown[0:3, 1:4].all()
    assert cp.tile_hits(labels, (11,), (4, 8), margin=9).all()
    with pytest.raises(ValueError, match="margin -1 must be an int >= 0"):
        cp.tile_hits(labels, (11,), (4, 8), margin=-1)
    with pytest.raises(ValueError, match="square tiles"):
        cp.tile_hits(labels, (11,), (4, 4))


def test_split_and_merge_are_inverse() -> None:
    rng = np.random.default_rng(0)
    kept, hits = rng.random((4, 8)) < 0.6, rng.random((4, 8)) < 0.3
    idx = rng.integers(0, 32, (4, 8))
    hot, cold = cp.split_grid(kept, hits)
    assert not (hot & cold).any() and ((hot | cold) == kept).all()
    none = np.zeros((4, 8), bool)
    merged, kept2, missing = cp.merge_grids((idx, idx), (hot, cold), (none, none))
    assert (kept2 == kept).all() and not missing.any() and (merged[kept] == idx[kept]).all()
    # The protected part lost: its positions come back missing (filled by the de-masker).
    _, kept3, missing3 = cp.merge_grids((idx, idx), (none, cold), (np.ones_like(none), none))
    assert (kept3 == cold).all() and (missing3 == ~cold).all()


def _grid(seed: int) -> TokenGrid:
    rng = np.random.default_rng(seed)
    return TokenGrid(name="g", indices=rng.integers(0, 64, (16, 16)),
                     prior=Prior.uniform(64), mask=rng.random((16, 16)) < 0.7)


def test_packet_breaks_cut_packets_and_decode() -> None:
    grid = _grid(1)
    plain = encode_packets([grid], 40)
    assert b"".join(d for *_, d in plain) == encode_payload([grid], 40)
    assert encode_packets([grid], 40, ()) == plain
    cut = encode_packets([grid], 40, [37, 38, 100])
    starts = {a for a, _, _ in cut}
    assert {37, 38, 100} <= starts  # a packet begins at every break
    assert all(not (a < b < a + n) for a, n, _ in cut for b in (37, 38, 100))
    dec = decode_payload(b"".join(d for *_, d in cut), PayloadSpec.of([grid], 40))
    assert dec.ok and (dec.grids["g"].mask == grid.mask).all()
    with pytest.raises(ValueError, match=r"must lie in \(0, 256\)"):
        encode_packets([grid], 40, [256])


def test_refusing_codecs_are_named() -> None:
    msg = cp.unsupported_message("jpeg")
    assert "'jpeg' cannot protect classes" in msg and "sqgan" in msg
    assert cp.supporting_codecs() == ["sqgan"]


# ------------------------------------------------------------------ shipped SQ-GAN
shipped = pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no shipped sqgan.pt")


@pytest.fixture(scope="module")
def codecs() -> tuple[SQGANCodec, SQGANCodec]:
    return (SQGANCodec(packet_bytes=29, m_s_ratio=4.0),
            SQGANCodec(packet_bytes=29, m_s_ratio=4.0, priority_classes=list(NAMED)))


@shipped
def test_constructor_validates_classes_and_packet_mode() -> None:
    with pytest.raises(ValueError, match="unknown class 'pedestrian'"):
        SQGANCodec(packet_bytes=29, priority_classes=["pedestrian"])
    with pytest.raises(ValueError, match="priority_classes needs packets"):
        SQGANCodec(priority_classes=["person"])
    with pytest.raises(ValueError, match="margin 1.5 must be an int"):
        SQGANCodec(packet_bytes=29, priority_classes=["person"], priority_margin=1.5)  # type: ignore[arg-type]


@shipped
def test_intact_class_payload_decodes_to_the_plain_one(codecs: tuple[SQGANCodec, SQGANCodec]
                                                       ) -> None:
    # The split is lossless: same tokens, same kept positions, so the same x_hat and s_hat.
    plain, by_class = codecs
    s = build_dataset("streetscenes", split="test", count=1, size=(128, 256), seed=0)[0]
    pa = plain.encode(s.image, s.labels, RatePoint(knob=0.15))
    pb = by_class.encode(s.image, s.labels, RatePoint(knob=0.15))
    ra = plain.decode(ReceivedPayload(pa.data, pa.shape))
    rb = by_class.decode(ReceivedPayload(pb.data, pb.shape))
    assert rb.ok and not rb.concealed
    assert np.array_equal(ra.image, rb.image) and np.array_equal(ra.labels, rb.labels)
    assert by_class.analytic_rate(pb).kept_x == plain.analytic_rate(pa).kept_x
    assert 0 < pb.priority_bytes < len(pb.data) and pb.priority_bytes % 29 == 0


@shipped
def test_only_priority_packets_keep_the_named_classes(codecs: tuple[SQGANCodec, SQGANCodec]
                                                      ) -> None:
    """Every non-priority packet lost: the named classes keep more of their error-free
    IoU (decoded map s_hat vs the labels the encoder was given) than the other classes.
    It would fail if the priority packets carried other tiles or the split lost tokens;
    measured on these 8 images: named 0.94 of error-free, others 0.54; with the default
    whole-map priority both keep 1.00, so the test fails there (docs/beyond.md). The
    named classes' absolute IoU is lower than the big classes' even error-free (a person
    is a tile or two), so the comparison is of what each keeps."""
    _, codec = codecs
    ids = [CLASS_NAMES.index(c) for c in NAMED]
    others = [c for c in range(len(CLASS_NAMES)) if c not in ids]
    acc = np.zeros((2, 2, len(CLASS_NAMES)))  # [free | priority only, inter | union, class]
    for s in build_dataset("streetscenes", split="test", count=8, size=(128, 256), seed=0):
        p = codec.encode(s.image, s.labels, RatePoint(knob=0.15))
        for j, lost in enumerate(((), ((p.priority_bytes, len(p.data)),))):
            got = codec.decode_detailed(ReceivedPayload(p.data, p.shape, lost))
            rec = got.reconstruction
            assert rec.ok and rec.labels is not None
            acc[j] += metrics.iou_counts(metrics.confusion_matrix(rec.labels, s.labels, 19))
            if lost:  # delivered kept tokens lie in the named classes' (grown) tiles only
                hits = cp.tile_hits(s.labels, ids, (8, 16), codec.priority_margin)
                assert got.missing_s is not None and got.missing_s[~hits].all()
                assert not got.missing_s.all()
    iou = acc[:, 0] / np.maximum(acc[:, 1], 1)
    present = acc[0, 1] > 0
    named = [c for c in ids if present[c]]
    rest = [c for c in others if present[c]]
    keep_named = iou[1, named].mean() / iou[0, named].mean()
    keep_rest = iou[1, rest].mean() / iou[0, rest].mean()
    assert keep_named > keep_rest + 0.15, (keep_named, keep_rest)


# ------------------------------------------------------------------ experiment config
BASE = """name: t
codecs: [{name: %s, %s, params: {priority_classes: %s}}]
links: [{modulation: 16qam, code_rate: 0.5, k: 256,
         priority: {modulation: qpsk, code_rate: 0.333, k: 256}}]
snr: {esno_db: [4]}
"""


@pytest.mark.parametrize(("codec", "rate", "classes", "expect"), [
    ("jpeg", "bpp: [0.5]", "[person]", "codec 'jpeg' cannot protect classes"),
    ("sqgan", "knob: [0.15]", "[person, pedestrain]", "unknown class 'pedestrain'"),
    ("sqgan", "knob: [0.15]", "[]", "non-empty list of class names"),
])
def test_cli_refuses_bad_priority_classes_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 codec: str, rate: str, classes: str,
                                                 expect: str) -> None:
    from semcomm.cli import main

    path = tmp_path / "x.yaml"
    path.write_text(BASE % (codec, rate, classes))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expect in err and str(path) in err
    assert not (tmp_path / "out").exists()
