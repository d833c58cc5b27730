"""Cityscapes loader (gtFine), labelIds mapped to the 19 evaluation trainIds.

Expected layout (as distributed by cityscapes-dataset.com)::

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Images are resized with Pillow's bilinear filter (antialiased when shrinking), labels
with nearest neighbour so that no label is invented at a boundary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from semcomm.data.base import ImageDataset
from semcomm.data.types import VOID, Sample

#: (labelId, trainId) of the 19 evaluated classes; every other labelId (0-6 void classes,
#: parking, rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer, license
#: plate) maps to 255. Source: cityscapesScripts, helpers/labels.py.
_EVALUATED: tuple[tuple[int, int], ...] = (
    (7, 0), (8, 1), (11, 2), (12, 3), (13, 4), (17, 5), (19, 6), (20, 7), (21, 8), (22, 9),
    (23, 10), (24, 11), (25, 12), (26, 13), (27, 14), (28, 15), (31, 16), (32, 17), (33, 18),
)  # fmt: skip


def _lut() -> np.ndarray:
    lut = np.full(256, VOID, np.uint8)
    for label_id, train_id in _EVALUATED:
        lut[label_id] = train_id
    return lut


#: [256] uint8 lookup table labelId -> trainId (255 = void).
LABEL_ID_TO_TRAIN_ID: np.ndarray = _lut()

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a Cityscapes labelIds map [H, W] (uint8 or int) to trainIds [H, W] uint8."""
    ids = np.asarray(label_ids)
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise ValueError(f"labelIds range [{ids.min()}, {ids.max()}] outside [0, 255]")
    return LABEL_ID_TO_TRAIN_ID[ids.astype(np.intp)]


class Cityscapes(ImageDataset):
    """Cityscapes fine annotations as :class:`Sample` (image uint8, labels trainIds).

    Parameters
    ----------
    root : str | Path
        Folder holding ``leftImg8bit/`` and ``gtFine/``.
    split : "train" | "val" | "test"
    count : int | None
        Use the first ``count`` images in sorted order (None: all of them).
    size : (H, W) | None
        Output size (e.g. (256, 512) as in SQ-GAN); None keeps 1024 x 2048.

    Raises ValueError naming the path for a missing root or split folder, a split
    without images, or an image whose label file is missing.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "val",
        count: int | None = None,
        size: tuple[int, int] | None = (256, 512),
    ) -> None:
        if root is None:
            raise ValueError("cityscapes needs root=<folder with leftImg8bit/ and gtFine/>")
        self.root = Path(root)
        if split not in ("train", "val", "test"):
            raise ValueError(f"split {split!r} unknown; choose one of ['test', 'train', 'val']")
        if not self.root.is_dir():
            raise ValueError(f"Cityscapes root {self.root} does not exist or is not a folder")
        self.split = split
        self.size = _check_size(size)
        self.images = self._find_images()
        if count is not None:
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"count {count!r} must be an integer >= 1 or None")
            if count > len(self.images):
                raise ValueError(
                    f"count {count} exceeds the {len(self.images)} images in "
                    f"{self.root / 'leftImg8bit' / split}"
                )
            self.images = self.images[:count]
        self.labels = [self._label_path(p) for p in self.images]

    def _find_images(self) -> list[Path]:
        folder = self.root / "leftImg8bit" / self.split
        if not folder.is_dir():
            raise ValueError(f"Cityscapes split folder {folder} does not exist")
        images = sorted(folder.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise ValueError(f"no *{IMAGE_SUFFIX} images in {folder}/<city>/ (empty split)")
        return images

    def _label_path(self, image: Path) -> Path:
        stem = image.name[: -len(IMAGE_SUFFIX)]
        label = self.root / "gtFine" / self.split / image.parent.name / f"{stem}{LABEL_SUFFIX}"
        if not label.is_file():
            raise ValueError(f"image {image} has no label file: expected {label}")
        return label

    def __len__(self) -> int:
        return len(self.images)

    def _load(self, index: int) -> Sample:
        img_path, lab_path = self.images[index], self.labels[index]
        image: Image.Image = Image.open(img_path).convert("RGB")
        label: Image.Image = Image.open(lab_path)
        if label.size != image.size:
            raise ValueError(
                f"label {lab_path} is {label.size[0]}x{label.size[1]} but image "
                f"{img_path} is {image.size[0]}x{image.size[1]} (W x H)"
            )
        if label.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(f"label {lab_path} has mode {label.mode}; expected single-channel ids")
        if self.size is not None:
            h, w = self.size
            image = image.resize((w, h), Image.Resampling.BILINEAR)
            label = label.resize((w, h), Image.Resampling.NEAREST)
        stem = img_path.name[: -len(IMAGE_SUFFIX)]
        return Sample(
            image=np.asarray(image, np.uint8),
            labels=label_ids_to_train_ids(np.asarray(label)),
            name=f"cityscapes/{self.split}/{img_path.parent.name}/{stem}",
        )


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if len(size) != 2 or not all(isinstance(v, int) and 8 <= v <= 8192 for v in size):
        raise ValueError(f"size {size!r} must be None or (H, W) integers in [8, 8192]")
    return int(size[0]), int(size[1])
