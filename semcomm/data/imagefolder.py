"""Unlabelled images from a folder (codec metrics only: PSNR, MS-SSIM, bpp)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from semcomm.data.base import ImageDataset
from semcomm.data.types import Sample

#: File name endings read as images (case-insensitive).
EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp", ".tif", ".tiff")


class ImageFolder(ImageDataset):
    """Every image file under ``root`` (recursively, sorted by relative path).

    Parameters
    ----------
    root : str | Path
        Folder to scan.
    size : (H, W) | None
        Bring every image to this size (see ``resize``); None keeps each image's own size.
    resize : "stretch" | "crop" | "pad" | "none"
        How an image reaches ``size``: "stretch" (default) resizes to exactly H x W
        (bilinear), warning once when an image's aspect ratio differs from H / W by more
        than 1% (it is distorted); "crop" scales it to cover H x W and cuts the centre;
        "pad" scales it to fit inside and pads with mid-grey (128); "none" keeps each
        image's own size (``size`` must then be None).
    on_error : "raise" | "skip"
        Files that cannot be read as images: "raise" (default) raises ValueError
        listing every such file by name; "skip" leaves them out with a warning that
        lists them. Never skipped silently.

    ``ds[i]`` returns :class:`Sample` with labels None and name
    ``"imagefolder/<relative path>"``.
    """

    def __init__(
        self, root: str | Path, size: tuple[int, int] | None = None, on_error: str = "raise",
        resize: str = "stretch",
    ) -> None:
        if root is None:
            raise ValueError("imagefolder needs root=<folder of images>")
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"image folder {self.root} does not exist or is not a folder")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error {on_error!r} unknown; choose 'raise' or 'skip'")
        if size is not None and (
            len(size) != 2 or not all(isinstance(v, int) and 8 <= v <= 8192 for v in size)
        ):
            raise ValueError(f"size {size!r} must be None or (H, W) integers in [8, 8192]")
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize {resize!r} unknown; choose one of {list(RESIZE_MODES)}")
        if resize == "none" and size is not None:
            raise ValueError(f"resize 'none' keeps each image's size: give size null, not "
                             f"{list(size)}")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.resize = resize
        self._warned_aspect = False
        files = sorted(
            p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
        )
        if not files:
            raise ValueError(f"no image files ({', '.join(EXTENSIONS)}) under {self.root}")
        bad = [(p, why) for p in files if (why := _unreadable(p))]
        if bad:
            listing = "; ".join(f"{p}: {why}" for p, why in bad)
            if on_error == "raise":
                raise ValueError(f"{len(bad)} unreadable image file(s) in {self.root}: {listing}")
            warnings.warn(f"skipping {len(bad)} unreadable image file(s): {listing}", stacklevel=2)
        skip = {p for p, _ in bad}
        self.files = [p for p in files if p not in skip]
        if not self.files:
            raise ValueError(f"no readable image files under {self.root}")

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> Sample:
        path = self.files[index]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise ValueError(f"cannot decode image {path}: {err}") from err
        if self.size is not None:
            image = self._fit(image, path)
        rel = path.relative_to(self.root).as_posix()
        return Sample(image=np.asarray(image, np.uint8), labels=None, name=f"imagefolder/{rel}")


    def _fit(self, image: Image.Image, path: Path) -> Image.Image:
        """``image`` brought to ``self.size`` by ``self.resize``."""
        assert self.size is not None
        h, w = self.size
        iw, ih = image.size
        bilinear = Image.Resampling.BILINEAR
        if self.resize == "stretch":
            if abs((ih / iw) / (h / w) - 1.0) > 0.01 and not self._warned_aspect:
                self._warned_aspect = True
                warnings.warn(f"resize 'stretch': {path.name} is {iw}x{ih} (W x H), its aspect "
                              f"ratio differs from the {w}x{h} size, so it is distorted; "
                              "give resize: crop or pad to keep the aspect", stacklevel=3)
            return image.resize((w, h), bilinear)
        cover = self.resize == "crop"
        scale = max(h / ih, w / iw) if cover else min(h / ih, w / iw)
        sw, sh = max(1, round(iw * scale)), max(1, round(ih * scale))
        scaled = image.resize((sw, sh), bilinear)
        if cover:
            left, top = (sw - w) // 2, (sh - h) // 2
            return scaled.crop((left, top, left + w, top + h))
        canvas = Image.new("RGB", (w, h), (128, 128, 128))
        canvas.paste(scaled, ((w - sw) // 2, (h - sh) // 2))
        return canvas


#: How ``ImageFolder`` brings an image to ``size``.
RESIZE_MODES = ("stretch", "crop", "pad", "none")


def _unreadable(path: Path) -> str:
    """'' if Pillow can parse the file's header and data, else the reason."""
    try:
        with Image.open(path) as im:
            im.verify()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        return f"{type(err).__name__}: {err}"
    return ""
