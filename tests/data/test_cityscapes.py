"""Cityscapes: labelIds -> trainIds against the official table; loader on a fake tree."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcomm.data import Cityscapes, build_dataset
from semcomm.data.cityscapes import LABEL_ID_TO_TRAIN_ID, label_ids_to_train_ids

# (id, name, trainId) from cityscapesScripts/cityscapesscripts/helpers/labels.py
# (ignoreInEval classes have trainId 255; 'license plate' id -1 cannot occur in a PNG).
OFFICIAL = [
    (0, "unlabeled", 255), (1, "ego vehicle", 255), (2, "rectification border", 255),
    (3, "out of roi", 255), (4, "static", 255), (5, "dynamic", 255), (6, "ground", 255),
    (7, "road", 0), (8, "sidewalk", 1), (9, "parking", 255), (10, "rail track", 255),
    (11, "building", 2), (12, "wall", 3), (13, "fence", 4), (14, "guard rail", 255),
    (15, "bridge", 255), (16, "tunnel", 255), (17, "pole", 5), (18, "polegroup", 255),
    (19, "traffic light", 6), (20, "traffic sign", 7), (21, "vegetation", 8),
    (22, "terrain", 9), (23, "sky", 10), (24, "person", 11), (25, "rider", 12),
    (26, "car", 13), (27, "truck", 14), (28, "bus", 15), (29, "caravan", 255),
    (30, "trailer", 255), (31, "train", 16), (32, "motorcycle", 17), (33, "bicycle", 18),
]  # fmt: skip

SPLIT_CITY = ("val", "aachen")


def test_mapping_matches_official_table():
    for label_id, name, train_id in OFFICIAL:
        assert LABEL_ID_TO_TRAIN_ID[label_id] == train_id, name
    assert np.all(LABEL_ID_TO_TRAIN_ID[34:] == 255)
    assert sorted(t for _, _, t in OFFICIAL if t != 255) == list(range(19))


def test_mapping_rejects_out_of_range():
    with pytest.raises(ValueError, match="labelIds range"):
        label_ids_to_train_ids(np.array([[300]]))


def _write_pair(
    root: Path,
    split: str,
    city: str,
    frame: str,
    ids: np.ndarray,
    label: bool = True,
    label_shape: tuple[int, int] | None = None,
) -> None:
    img_dir = root / "leftImg8bit" / split / city
    lab_dir = root / "gtFine" / split / city
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    h, w = ids.shape
    i = ids.astype(np.int64)
    rgb = np.stack([i * 7 % 256, i * 3 % 256, np.full_like(i, 50)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(img_dir / f"{city}_{frame}_leftImg8bit.png")
    if label:
        lab = ids if label_shape is None else np.zeros(label_shape, np.uint8)
        Image.fromarray(lab.astype(np.uint8), mode="L").save(
            lab_dir / f"{city}_{frame}_gtFine_labelIds.png"
        )


def _block_ids(seed: int, h: int = 64, w: int = 128, block: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 34, (h // block, w // block))
    return np.kron(small, np.ones((block, block), np.int64)).astype(np.uint8)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _write_pair(tmp_path, "val", "aachen", "000000_000019", _block_ids(0))
    _write_pair(tmp_path, "val", "bochum", "000001_000020", _block_ids(1))
    return tmp_path


def test_loader_native_size(tree):
    ds = Cityscapes(tree, "val", size=None)
    assert len(ds) == 2
    s = ds[0]
    assert s.name == "cityscapes/val/aachen/aachen_000000_000019"
    assert s.image.shape == (64, 128, 3) and s.image.dtype == np.uint8
    np.testing.assert_array_equal(s.labels, LABEL_ID_TO_TRAIN_ID[_block_ids(0)])


def test_loader_resizes_labels_with_nearest(tree):
    ds = build_dataset("cityscapes", root=tree, split="val", count=None, size=(32, 64))
    s = ds[1]
    assert s.image.shape == (32, 64, 3) and s.labels.shape == (32, 64)
    # 4x4 blocks halved: nearest keeps each 2x2 block's id exactly, no mixed values.
    expected = LABEL_ID_TO_TRAIN_ID[_block_ids(1)[::2, ::2]]
    np.testing.assert_array_equal(s.labels, expected)


def test_count_limits_and_checks(tree):
    assert len(Cityscapes(tree, "val", count=1)) == 1
    with pytest.raises(ValueError, match="exceeds"):
        Cityscapes(tree, "val", count=3)


def test_missing_root_names_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=str(missing)):
        Cityscapes(missing, "val")


def test_missing_split_and_empty_split(tree):
    with pytest.raises(ValueError, match="leftImg8bit/train"):
        Cityscapes(tree, "train")
    (tree / "leftImg8bit" / "test" / "berlin").mkdir(parents=True)
    with pytest.raises(ValueError, match="empty split"):
        Cityscapes(tree, "test")


def test_image_without_label_names_expected_path(tree):
    _write_pair(tree, "val", "aachen", "000002_000019", _block_ids(2), label=False)
    with pytest.raises(ValueError, match="aachen_000002_000019_gtFine_labelIds.png"):
        Cityscapes(tree, "val")


def test_mismatched_sizes_name_both_files(tree):
    _write_pair(tree, "val", "zurich", "000003_000019", _block_ids(3), label_shape=(10, 10))
    ds = Cityscapes(tree, "val", size=None)
    with pytest.raises(ValueError, match="zurich_000003_000019_gtFine_labelIds.png"):
        ds[2]


def test_bad_split_and_size(tree):
    with pytest.raises(ValueError, match="split"):
        Cityscapes(tree, "training")
    with pytest.raises(ValueError, match="size"):
        Cityscapes(tree, "val", size=(0, 10))
