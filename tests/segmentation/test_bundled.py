"""The shipped checkpoint: weights-only, small, and actually segments StreetScenes."""

import numpy as np
import torch

from semcomm.data import StreetScenes
from semcomm.segmentation import BUNDLED_PATH, BundledSegmenter, confusion, iou_from_confusion
from semcomm.segmentation.model import FORMAT


def test_checkpoint_is_weights_only_and_small():
    assert BUNDLED_PATH.stat().st_size <= 5_000_000
    ck = torch.load(BUNDLED_PATH, map_location="cpu", weights_only=True)
    assert ck["format"] == FORMAT
    assert set(ck["config"]) == {"widths", "blocks8", "blocks16", "num_classes"}
    assert all(isinstance(v, torch.Tensor) for v in ck["state_dict"].values())
    # Logit adjustment: rare classes were up-weighted in training, so their bias is negative.
    bias = ck["logit_bias"]
    assert bias.shape == (19,) and bias[16] < 0 < bias[0]
    assert not BundledSegmenter(logit_adjust=False).bias.any()


def test_beats_sanity_miou_on_held_out_images():
    # 8 test-split images; the full 200-image figure is in scripts/eval_segmenter.py.
    # A broken export (e.g. wrong weights or class order) scores < 0.15 here.
    ds = StreetScenes("test", 8, (128, 256), seed=0)
    imgs = np.stack([ds[i].image for i in range(8)])
    labs = np.stack([ds[i].labels for i in range(8)])
    pred = BundledSegmenter().segment_uint8(imgs)
    _, miou = iou_from_confusion(confusion(pred, labs))
    assert miou > 0.55, miou
    assert np.mean(pred[labs != 255] == labs[labs != 255]) > 0.85
