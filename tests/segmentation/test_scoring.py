"""Confusion matrix and IoU on hand-computed examples."""

import numpy as np
import pytest

from semcomm.segmentation import confusion, iou_from_confusion


def test_iou_hand_example():
    target = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 3, 0]])
    conf = confusion(pred, target, num_classes=4)
    iou, miou = iou_from_confusion(conf)
    # class 0: TP 1, FP 1 (2->0), FN 1 (0->1) -> 1/3; class 1: TP 2, FP 1 -> 2/3;
    # class 2: TP 1, FN 1 -> 1/2; class 3: absent from truth and (unvoided) prediction.
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 1 / 2])
    assert np.isnan(iou[3])
    assert miou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_void_prediction_is_a_miss_only():
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 255, 1, 1])
    iou, _ = iou_from_confusion(confusion(pred, target, num_classes=2))
    np.testing.assert_allclose(iou, [0.5, 1.0])


def test_shape_and_range_errors():
    with pytest.raises(ValueError, match="shape"):
        confusion(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="target ids"):
        confusion(np.zeros(3), np.array([0, 1, 40]))
