"""ImageFolder: reads nested images, reports unreadable files by name."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcomm.data import ImageFolder, build_dataset


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / "sub" / "b.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_reads_sorted_nested_images(folder):
    ds = build_dataset("imagefolder", root=folder, size=None)
    assert type(ds) is ImageFolder and len(ds) == 2
    a, b = ds[0], ds[1]
    assert a.name == "imagefolder/a.png" and b.name == "imagefolder/sub/b.jpg"
    assert a.image.shape == (20, 30, 3) and b.image.shape == (16, 16, 3)  # grey -> RGB
    assert a.labels is None and a.image.dtype == np.uint8
    np.testing.assert_array_equal(a.image, np.asarray(Image.open(folder / "a.png")))


def test_resize(folder):
    s = ImageFolder(folder, size=(8, 12))[1]
    assert s.image.shape == (8, 12, 3)


def test_unreadable_file_is_named(folder):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="broken.png"):
        ImageFolder(folder)
    with pytest.warns(UserWarning, match="broken.png"):
        ds = ImageFolder(folder, on_error="skip")
    assert len(ds) == 2


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no image files"):
        ImageFolder(tmp_path)
    with pytest.raises(ValueError, match="on_error"):
        ImageFolder(tmp_path, on_error="ignore")
