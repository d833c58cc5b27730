"""Segmenter interface: shapes, dtypes, ground-truth pass-through, TorchScript round trip."""

from pathlib import Path

import numpy as np
import pytest
import torch

from semcomm.segmentation import (
    SEGMENTERS,
    BundledSegmenter,
    GroundTruthSegmenter,
    TorchScriptSegmenter,
    build_segmenter,
)

# torch 2.13 deprecates torch.jit in favour of torch.export; TorchScript files are what
# users have today, so the segmenter accepts them.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


class _RedLevels(torch.nn.Module):
    """Logits peak at class round(red * (C - 1)): a known answer for every pixel."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = torch.arange(self.classes, dtype=x.dtype).view(1, -1, 1, 1) / (self.classes - 1)
        return -((x[:, :1] - levels) ** 2)


class _Ids(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, 0] * 4).round().long()


def _script(module: torch.nn.Module, path: Path) -> Path:
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def _images(b: int = 3, h: int = 8, w: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_registry_builds_every_entry(tmp_path):
    model = _script(_RedLevels(19), tmp_path / "m.pt")
    kwargs = {"ground-truth": {}, "bundled": {}, "judge": {}, "torchscript": {"path": model}}
    assert set(kwargs) == set(SEGMENTERS)
    for name, cls in SEGMENTERS.items():
        seg = build_segmenter(name, **kwargs[name])
        assert type(seg) is cls and seg.name == name
    with pytest.raises(ValueError, match="unknown"):
        build_segmenter("deeplab")
    with pytest.raises(ValueError, match="bad arguments"):
        build_segmenter("ground-truth", path="x")


def test_ground_truth_passthrough():
    x = _images()
    y = torch.randint(0, 19, (3, 8, 12), dtype=torch.uint8)
    y[0, 0, 0] = 255
    out = GroundTruthSegmenter().segment(x, y)
    assert out.dtype == torch.int64 and torch.equal(out, y.long())
    u8 = GroundTruthSegmenter().segment_uint8(
        (x.permute(0, 2, 3, 1) * 255).byte().numpy(), y.numpy()
    )
    assert u8.dtype == np.uint8 and np.array_equal(u8, y.numpy())


def test_ground_truth_needs_matching_labels():
    seg = GroundTruthSegmenter()
    with pytest.raises(ValueError, match="needs labels"):
        seg.segment(_images())
    with pytest.raises(ValueError, match="labels shape"):
        seg.segment(_images(), torch.zeros(3, 8, 11, dtype=torch.long))


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(3, 8, 12),
        torch.rand(1, 4, 8, 8),
        torch.zeros(1, 3, 4, 4, dtype=torch.uint8),
        torch.full((1, 3, 4, 4), 2.0),
        np.zeros((1, 3, 4, 4), np.float32),
    ],
)
def test_bad_images_raise(bad):
    with pytest.raises(ValueError):
        GroundTruthSegmenter().segment(bad, torch.zeros(1, 4, 4, dtype=torch.long))


def test_segment_uint8_rejects_float():
    with pytest.raises(ValueError, match="uint8"):
        GroundTruthSegmenter().segment_uint8(np.zeros((1, 4, 4, 3), np.float32))


def test_torchscript_identity_and_class_map(tmp_path):
    x = _images(5, 6, 10)
    expected = (x[:, 0] * 18).round().long()
    seg = TorchScriptSegmenter(_script(_RedLevels(19), tmp_path / "m19.pt"))
    assert torch.equal(seg.segment(x), expected)
    five = _script(_RedLevels(5), tmp_path / "m5.pt")
    class_map = [0, 13, 255, 10, 8]
    seg5 = build_segmenter("torchscript", path=five, class_map=class_map)
    out = seg5.segment(x)
    assert torch.equal(out, torch.tensor(class_map)[(x[:, 0] * 4).round().long()])
    with pytest.raises(ValueError, match="class_map"):
        TorchScriptSegmenter(five).segment(x)
    with pytest.raises(ValueError, match="class_map"):
        TorchScriptSegmenter(five, class_map=[0, 1, 2]).segment(x)
    with pytest.raises(ValueError, match="trainIds"):
        TorchScriptSegmenter(five, class_map=[0, 1, 2, 19, 3])


def test_torchscript_id_output_and_uint8_batching(tmp_path):
    seg = TorchScriptSegmenter(_script(_Ids(), tmp_path / "ids.pt"), class_map=[7, 6, 5, 4, 3])
    seg.batch_size = 4
    imgs = np.random.default_rng(0).integers(0, 256, (10, 6, 9, 3), dtype=np.uint8)
    out = seg.segment_uint8(imgs)
    assert out.shape == (10, 6, 9) and out.dtype == np.uint8
    expected = np.array([7, 6, 5, 4, 3])[np.rint(imgs[..., 0] / 255 * 4).astype(int)]
    assert np.array_equal(out, expected)


def test_torchscript_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        TorchScriptSegmenter(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="TorchScript"):
        TorchScriptSegmenter(junk)


def test_bundled_shapes_on_any_size():
    x = _images(2, 50, 70)
    out = BundledSegmenter().segment(x)
    assert out.shape == (2, 50, 70) and out.dtype == torch.int64
    assert int(out.min()) >= 0 and int(out.max()) <= 18
    flipped = BundledSegmenter(flip=True).segment(x)
    assert flipped.shape == out.shape
    # Flip averaging is mirror-symmetric: segmenting the mirror image mirrors the map.
    mirrored = BundledSegmenter(flip=True).segment(x.flip(-1)).flip(-1)
    assert torch.mean((mirrored == flipped).float()) > 0.99


def test_bundled_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="semcomm train segmenter"):
        BundledSegmenter(tmp_path / "none.pt")
