"""Our MS-SSIM (NumPy, ``semcomm.metrics.ms_ssim``) against a library implementation,
``pytorch_msssim`` (a test-only dependency, the ``dev`` extra).

Both follow Wang et al. 2003: 11 x 11 Gaussian window (sigma 1.5), K = (0.01, 0.03),
'valid' borders, 2 x 2 average pooling, contrast-structure at scales 1..4 and SSIM at
scale 5, negative values clipped to 0, mean over RGB channels. Two known differences
are removed before comparing, so that anything left is a real disagreement:

* the library rounds its Gaussian window to float32, which moves E[x^2] - mu^2 of
  8-bit images by ~1e-3 and MS-SSIM by ~1e-5: we hand it a float64 window;
* Wang's weights sum to 1.0001 and we renormalise them to 1 (we also drop scales that
  do not fit small images): with the same renormalised weights the two agree to
  1e-9 (float64 rounding of a few hundred thousand sums); with the library's own
  weights the exponent differs by 1e-4 relative, so |ours - lib| <= lib * |ln lib| * 1e-4
  <= 0.37e-4 (max of m |ln m| on [0, 1] is 1/e).

The library asserts a shorter side > 160 pixels (five scales), so images are 256 x 512,
where we also use five scales.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

from semcomm.metrics import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_scales

pytorch_msssim = pytest.importorskip("pytorch_msssim", reason="pip install -e '.[dev]'")
torch = pytest.importorskip("torch")


def _images() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from semcomm.data import build_dataset

    ds = build_dataset("streetscenes", split="test", count=2, size=(256, 512))
    x, other = ds[0].image, ds[1].image
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=10)
    jpeg = np.asarray(Image.open(buf).convert("RGB"))
    rng = np.random.default_rng(0)
    noisy = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).astype(np.uint8)
    blur = np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(2)))
    return {"jpeg-q10": (x, jpeg), "noise-20": (x, noisy), "blur-2": (x, blur),
            "other-scene": (x, other), "identical": (x, x.copy())}


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].to(torch.float64)


def _library(x: np.ndarray, y: np.ndarray, weights: list[float] | None) -> float:
    t = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(t**2) / (2 * 1.5**2))
    win = (g / g.sum()).reshape(1, 1, 1, 11).repeat(3, 1, 1, 1)
    return float(pytorch_msssim.ms_ssim(_tensor(x), _tensor(y), data_range=255, win=win,
                                        weights=weights, size_average=True))


def test_ms_ssim_matches_pytorch_msssim() -> None:
    assert ms_ssim_scales(256, 512) == 5
    renormalised = list(np.asarray(MS_SSIM_WEIGHTS) / sum(MS_SSIM_WEIGHTS))
    values = {}
    for name, (x, y) in _images().items():
        ours = ms_ssim(x, y)
        values[name] = ours
        assert ours == pytest.approx(_library(x, y, renormalised), abs=1e-9), name
        lib = _library(x, y, None)
        bound = lib * abs(math.log(lib)) * 1.1e-4 if lib > 0 else 0.0
        assert abs(ours - lib) <= bound + 1e-12, (name, ours, lib)
    # Not vacuous: the pairs span the range, and the identical pair is exactly 1.
    assert values["identical"] == pytest.approx(1.0, abs=1e-12)
    assert values["other-scene"] < 0.4 < values["noise-20"] < values["jpeg-q10"] < 1.0
