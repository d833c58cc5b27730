"""The independent judge: another network than the teacher, shipped, and really trained."""

import ast
from pathlib import Path

import numpy as np
import torch

from semcomm.data import StreetScenes
from semcomm.segmentation import (
    BUNDLED_PATH,
    JUDGE_PATH,
    JudgeSegmenter,
    build_segmenter,
    confusion,
    iou_from_confusion,
)
from semcomm.segmentation.model import FORMAT, JudgeNet

ROOT = Path(__file__).parents[2]


def test_judge_checkpoint_is_weights_only_small_and_another_architecture():
    assert JUDGE_PATH.stat().st_size <= 5_000_000
    ck = torch.load(JUDGE_PATH, map_location="cpu", weights_only=True)
    bundled = torch.load(BUNDLED_PATH, map_location="cpu", weights_only=True)
    assert ck["format"] == FORMAT and ck["config"]["arch"] == "judgenet"
    assert bundled["config"].get("arch", "segnet") == "segnet"
    judge = build_segmenter("judge")
    assert isinstance(judge, JudgeSegmenter) and isinstance(judge.model, JudgeNet)


def test_no_codec_trains_against_the_judge():
    """The judge must stay out of every loss: no code under semcomm/codecs names it."""
    for path in (ROOT / "semcomm" / "codecs").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        strings = {n.value for n in ast.walk(tree)
                   if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not {"JUDGE_PATH", "JudgeSegmenter"} & names, path
        assert "judge" not in strings and "judge.pt" not in strings, path


def test_judge_segments_held_out_images():
    # 16 test-split images; the 200-image figure (0.755 clean, flip on) is in
    # docs/data_segmentation.md (python scripts/eval_segmenter.py --checkpoint
    # semcomm/assets/judge.pt --flip). An untrained or broken export scores < 0.15 here.
    ds = StreetScenes("test", 16, (128, 256), seed=0)
    imgs = np.stack([ds[i].image for i in range(16)])
    labs = np.stack([ds[i].labels for i in range(16)])
    pred = build_segmenter("judge").segment_uint8(imgs)
    _, miou = iou_from_confusion(confusion(pred, labs))
    assert miou > 0.70, miou  # 0.725 measured (flip on, the default)
    assert np.mean(pred[labs != 255] == labs[labs != 255]) > 0.85
