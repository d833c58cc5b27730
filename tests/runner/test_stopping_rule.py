"""The stopping rule's interval guard (semcomm.runner.summary.stop_reason): a zero-width
bootstrap interval of draws that are all alike does not stop a point; the same widths
from draws that differ do."""

from __future__ import annotations

from typing import Any

import numpy as np

from semcomm.runner.config import StoppingConfig
from semcomm.runner.summary import stop_reason


def _line(image: int, inter: list[float], union: list[float], psnr: float,
          block_errors: int = 0) -> dict[str, Any]:
    return {"kind": "link", "image": image, "realization": 0, "inter": inter, "union": union,
            "correct": sum(inter), "labelled": sum(union), "psnr": psnr, "blocks": 4,
            "block_errors": block_errors, "bits": 4000, "bit_errors": 0, "undetected": 0,
            "channel_uses": 1e4, "pixels": 32768}


def test_identical_draws_do_not_stop_on_a_zero_width_interval() -> None:
    rule = StoppingConfig(ci_half_width={"miou": 0.03}, min_images=4)
    same = [_line(i, [10.0, 5.0], [40.0, 50.0], 12.0) for i in range(6)]
    assert stop_reason(same, rule) is None
    psnr_rule = StoppingConfig(ci_half_width={"psnr": 0.5}, min_images=4)
    assert stop_reason(same, psnr_rule) is None


def test_draws_that_differ_stop_once_the_interval_is_tight() -> None:
    rng = np.random.default_rng(0)
    lines = [_line(i, [float(40 + rng.integers(0, 3)), 20.0], [50.0, 50.0],
                   20.0 + float(rng.normal(0, 0.1))) for i in range(8)]
    assert stop_reason(lines, StoppingConfig(ci_half_width={"miou": 0.03},
                                             min_images=4)) == "ci_half_width"
    assert stop_reason(lines, StoppingConfig(ci_half_width={"psnr": 0.5},
                                             min_images=4)) == "ci_half_width"
    # and a width asked tighter than the draws allow does not stop
    assert stop_reason(lines, StoppingConfig(ci_half_width={"miou": 1e-4},
                                             min_images=4)) is None


def test_bler_keeps_its_wilson_interval() -> None:
    lines = [{**_line(i, [10.0], [40.0], 12.0), "blocks": 100} for i in range(8)]
    # 800 blocks, none in error: the Wilson interval [0, ~0.005] is tight, not zero
    assert stop_reason(lines, StoppingConfig(ci_half_width={"bler": 0.01},
                                             min_images=4)) == "ci_half_width"


def test_draws_that_all_lost_a_block_do_not_stop_on_the_interval() -> None:
    """Every draw lost half its blocks: each shows the failure policy's image, so the
    (narrow, not zero) interval says nothing about how often a draw gets through; one
    draw that got through lets the same draws stop, and so do draws that lost every
    block."""
    rng = np.random.default_rng(1)
    lost = [_line(i, [float(10 + rng.integers(0, 2)), 5.0], [100.0, 100.0], 10.0,
                  block_errors=2) for i in range(8)]
    rule = StoppingConfig(ci_half_width={"miou": 0.03}, min_images=4)
    assert stop_reason(lost, rule) is None
    mixed = [*lost[:7], {**lost[7], "block_errors": 0}]
    assert stop_reason(mixed, rule) == "ci_half_width"
    # every block of every draw lost (a deep fade on AWGN): a draw gets through with
    # probability <= (1 - 0.89)^4 < 0.03 (Wilson, 32 of 32 blocks), so the point stops
    deep = [{**r, "block_errors": 4} for r in lost]
    assert stop_reason(deep, rule) == "ci_half_width"
