"""The shipped model file (semcomm/assets/deepjscc.pt) is really trained.

* size <= 20 MB, weights-only loading, its training config inside;
* at very high SNR (Es/N0 = 40 dB, AWGN) its PSNR on the first test images is at least
  the value in docs/deepjscc.md's "High-SNR quality" table (the docs cannot overstate);
* at 10 dB it beats the same architecture untrained by >= 5 dB PSNR at every ratio.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from channels.analog import AnalogChannel
from semcomm.codecs.base import RatePoint, ReceivedSymbols
from semcomm.codecs.deepjscc.codec import DEFAULT_CHECKPOINT, DeepJSCCCodec
from semcomm.codecs.deepjscc.model import DeepJSCC
from semcomm.data import StreetScenes
from semcomm.metrics import psnr

DOCS = Path(__file__).resolve().parents[3] / "docs" / "deepjscc.md"
IMAGES = 4  # first images of the test split, 128 x 256
RATIOS = (0.125, 0.25)


def docs_floor() -> dict[float, float]:
    """{ratio: PSNR dB} from the docs table under the heading 'High-SNR quality'."""
    text = DOCS.read_text()
    section = text.split("## High-SNR quality", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*([0-9.]+)\s*\|\s*([0-9.]+)\s*\|", section, flags=re.M)
    assert rows, f"{DOCS}: no table rows under '## High-SNR quality'"
    return {float(r): float(v) for r, v in rows}


def mean_psnr(codec: DeepJSCCCodec, ratio: float, esno_db: float) -> float:
    """Mean PSNR over the first IMAGES test images over AWGN (2048-symbol blocks)."""
    ch = AnalogChannel("awgn", 2048)
    out = []
    for i, smp in enumerate(StreetScenes(split="test", count=IMAGES)):
        p = codec.encode(smp.image, None, RatePoint(knob=ratio))
        r = ch.transmit([p.symbols], esno_db, [i])[0]
        rec = codec.decode(ReceivedSymbols(r.symbols, r.noise_var, esno_db, p.shape))
        assert rec.ok, rec.error
        out.append(psnr(smp.image, rec.image))
    return float(np.mean(out))


@pytest.fixture(scope="module")
def shipped() -> DeepJSCCCodec:
    assert DEFAULT_CHECKPOINT.is_file(), f"{DEFAULT_CHECKPOINT} is not shipped"
    assert DEFAULT_CHECKPOINT.stat().st_size <= 20_000_000
    codec = DeepJSCCCodec()
    assert codec.info["train"]["steps"] > 0  # the training config travels with it
    return codec


@pytest.mark.parametrize("ratio", RATIOS)
def test_high_snr_quality_is_at_least_the_docs_table(shipped: DeepJSCCCodec,
                                                     ratio: float) -> None:
    floor = docs_floor()
    assert ratio in floor, f"{DOCS}: no High-SNR row for {ratio}"
    got = mean_psnr(shipped, ratio, 40.0)
    assert got >= floor[ratio], f"PSNR {got:.2f} dB at {ratio} cu/px < docs {floor[ratio]}"


@pytest.mark.parametrize("ratio", RATIOS)
def test_shipped_beats_untrained_by_5_db_at_10_db(shipped: DeepJSCCCodec, ratio: float
                                                  ) -> None:
    torch.manual_seed(0)
    untrained = DeepJSCCCodec.from_model(DeepJSCC(shipped.cfg))
    trained_db = mean_psnr(shipped, ratio, 10.0)
    untrained_db = mean_psnr(untrained, ratio, 10.0)
    assert trained_db >= untrained_db + 5.0, (trained_db, untrained_db)


# The numbers of docs/deepjscc.md: python -m tests.codecs.deepjscc.test_shipped
if __name__ == "__main__":
    import math

    codec = DeepJSCCCodec()
    torch.manual_seed(0)
    blank = DeepJSCCCodec.from_model(DeepJSCC(codec.cfg))
    print("| bandwidth ratio (cu/px) | PSNR at 40 dB, AWGN (dB) |")
    for r in codec.ratios:
        got = mean_psnr(codec, r, 40.0)
        print(f"| {r:g} | {math.floor(got * 10) / 10:.1f} |   (measured {got:.3f})")
    for r in codec.ratios:
        print(f"ratio {r:g}: 10 dB AWGN PSNR trained {mean_psnr(codec, r, 10.0):.2f} dB, "
              f"untrained {mean_psnr(blank, r, 10.0):.2f} dB")
