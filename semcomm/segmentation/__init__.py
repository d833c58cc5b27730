"""Image -> semantic map (19 Cityscapes trainIds, 255 = void).

::

    seg = build_segmenter("bundled")        # our compact net, semcomm/assets/segmenter.pt
    seg = build_segmenter("judge")          # the independent judge, semcomm/assets/judge.pt
    seg = build_segmenter("ground-truth")   # passes the dataset's labels
    seg = build_segmenter("torchscript", path="model.pt", class_map=None)
    seg.segment(images [B,3,H,W] float32 in [0,1], labels=None) -> [B,H,W] int64
    seg.segment_uint8(images [B,H,W,3] uint8, labels=None)      -> [B,H,W] uint8
"""

from semcomm.segmentation.scoring import confusion, iou_from_confusion
from semcomm.segmentation.segmenters import (
    BUNDLED_PATH,
    JUDGE_PATH,
    SEGMENTERS,
    BundledSegmenter,
    GroundTruthSegmenter,
    JudgeSegmenter,
    Segmenter,
    TorchScriptSegmenter,
    build_segmenter,
    load_bundled,
)

__all__ = [
    "BUNDLED_PATH",
    "JUDGE_PATH",
    "SEGMENTERS",
    "BundledSegmenter",
    "GroundTruthSegmenter",
    "JudgeSegmenter",
    "Segmenter",
    "TorchScriptSegmenter",
    "build_segmenter",
    "confusion",
    "iou_from_confusion",
    "load_bundled",
]
