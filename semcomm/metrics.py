"""Image and semantic metrics: mIoU, pixel accuracy, PSNR, MS-SSIM, LPIPS, FID.

Glossary: x = original image, x_hat = reconstruction, s = ground-truth trainIds,
s_hat = segmenter output on x_hat. All images are [H, W, 3] uint8 unless stated.

mIoU is *pooled* over an operating point: per image we keep per-class intersection
and union pixel counts (:func:`iou_counts`), the point's mIoU sums them over images
first (:func:`mean_iou`), as in the Cityscapes evaluation; it is not a mean of
per-image IoUs. Link metrics (BER, BLER, outage) are ratios of counts summed by the
runner.

LPIPS and FID need network weights that cannot be downloaded here: they are computed
only from local files the user names in the experiment (a clear error otherwise).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from semcomm.data.types import NUM_CLASSES, VOID

# ---------------------------------------------------------------------- semantics


def confusion_matrix(
    s_hat: np.ndarray, s: np.ndarray, num_classes: int = NUM_CLASSES
) -> np.ndarray:
    """Confusion counts of one image, void ignored.

    Input
    -----
    s_hat : [H, W] uint8   predicted trainIds (values >= num_classes count as wrong)
    s : [H, W] uint8       ground truth trainIds, 255 = void (ignored)

    Output
    ------
    conf : [num_classes, num_classes + 1] int64; conf[g, p] = pixels of true class g
        predicted as p; column ``num_classes`` collects predictions outside [0, C).
    """
    if s_hat.shape != s.shape:
        raise ValueError(f"prediction shape {s_hat.shape} != label shape {s.shape}")
    gt = s.astype(np.int64).ravel()
    pred = np.minimum(s_hat.astype(np.int64).ravel(), num_classes)
    keep = gt != VOID
    bad = np.unique(gt[keep & (gt >= num_classes)])
    if bad.size:
        raise ValueError(f"label values {bad.tolist()} outside [0, {num_classes}) and not void")
    idx = gt[keep] * (num_classes + 1) + pred[keep]
    counts = np.bincount(idx, minlength=num_classes * (num_classes + 1))
    return counts.reshape(num_classes, num_classes + 1)


def iou_counts(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class intersection and union pixel counts [C] int64 from a confusion matrix."""
    c = conf.shape[0]
    inter = np.diag(conf[:, :c]).astype(np.int64)
    union = conf.sum(axis=1) + conf[:, :c].sum(axis=0) - inter
    return inter, union.astype(np.int64)


def mean_iou(intersection: np.ndarray, union: np.ndarray) -> float:
    """mIoU over classes with a non-zero pooled union; NaN if there is none.

    Input: intersection, union : [C] or [n_images, C] counts (summed over images first).
    """
    inter = np.asarray(intersection, dtype=np.float64)
    uni = np.asarray(union, dtype=np.float64)
    if inter.ndim == 2:
        inter, uni = inter.sum(axis=0), uni.sum(axis=0)
    present = uni > 0
    if not present.any():
        return math.nan
    return float(np.mean(inter[present] / uni[present]))


def pixel_accuracy(correct: int | np.ndarray, labelled: int | np.ndarray) -> float:
    """Share of labelled (non-void) pixels predicted right; counts may be per-image arrays."""
    total = float(np.sum(labelled))
    return float(np.sum(correct)) / total if total > 0 else math.nan


# ---------------------------------------------------------------------- fidelity


def _check_pair(x: np.ndarray, x_hat: np.ndarray) -> None:
    if x.shape != x_hat.shape or x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"images must both be [H, W, 3], got {x.shape} and {x_hat.shape}")


def psnr(x: np.ndarray, x_hat: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all pixels and channels; +inf for identical images."""
    _check_pair(x, x_hat)
    mse = float(np.mean((x.astype(np.float64) - x_hat.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


#: Scale weights of MS-SSIM (Wang, Simoncelli, Bovik 2003, Sec. 3.2).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(t**2) / (2 * sigma * sigma))
    return g / g.sum()


def ssim_terms(x: np.ndarray, y: np.ndarray, win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean SSIM and mean contrast-structure term per channel; x, y [H, W, C] float64."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2  # K1, K2 of Wang et al. 2004
    half = win.size // 2
    # One separable Gaussian pass ('valid' borders) over all five moments at once.
    moments = np.stack([x, y, x * x, y * y, x * y])  # [5, H, W, C]
    blurred = ndimage.correlate1d(ndimage.correlate1d(moments, win, axis=1), win, axis=2)
    blurred = blurred[:, half:-half or None, half:-half or None]
    mu_x, mu_y, ex2, ey2, exy = blurred
    var_x, var_y, cov = ex2 - mu_x**2, ey2 - mu_y**2, exy - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (lum * cs).mean(axis=(0, 1)), cs.mean(axis=(0, 1))


def _halve(z: np.ndarray) -> np.ndarray:
    """2 x 2 average pooling of [H, W, C] (odd last row/column dropped)."""
    h, w = z.shape[0] // 2 * 2, z.shape[1] // 2 * 2
    z = z[:h, :w]
    return 0.25 * (z[0::2, 0::2] + z[1::2, 0::2] + z[0::2, 1::2] + z[1::2, 1::2])


def ms_ssim_scales(height: int, width: int, window: int = 11) -> int:
    """Number of MS-SSIM scales that fit: coarsest side >= window, at most 5."""
    scales = 0
    side = min(height, width)
    while scales < len(MS_SSIM_WEIGHTS) and side >= window:
        scales += 1
        side //= 2
    if scales == 0:
        raise ValueError(f"image {height}x{width} is smaller than the {window}x{window} window")
    return scales


def ms_ssim(x: np.ndarray, x_hat: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """Multi-scale SSIM in [0, 1] (1 = identical), averaged over the RGB channels.

    Wang et al. 2003 use 5 scales with an 11 x 11 Gaussian window (sigma 1.5); at
    128 x 256 the fifth scale (8 x 16) is smaller than the window. Our adaptation keeps
    the window and uses the M scales that fit (:func:`ms_ssim_scales`: M = 4 at
    128 x 256, 3 at 64 x 128), with the first M of Wang's weights renormalised to sum
    to 1. Negative contrast-structure means are clipped to 0 before the power (as in
    common implementations) so the product stays real.
    """
    _check_pair(x, x_hat)
    scales = ms_ssim_scales(x.shape[0], x.shape[1], window)
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()
    win = gaussian_window(window, sigma)
    a, b = x.astype(np.float64), x_hat.astype(np.float64)
    factors = []
    for level in range(scales):
        ssim_val, cs_val = ssim_terms(a, b, win)
        factors.append(ssim_val if level == scales - 1 else cs_val)
        if level < scales - 1:
            a, b = _halve(a), _halve(b)
    stacked = np.clip(np.stack(factors), 0.0, None)  # [scales, channels]
    return float(np.prod(stacked ** weights[:, None], axis=0).mean())


# ---------------------------------------------------------------------- LPIPS

#: Backbone layers tapped by LPIPS (Zhang et al. CVPR 2018, Sec. 3): index in
#: ``features`` after which a tap is taken, and its channel count.
_LPIPS_TAPS = {
    "vgg": ((3, 8, 15, 22, 29), (64, 128, 256, 512, 512)),
    "alex": ((1, 4, 7, 9, 11), (64, 192, 384, 256, 256)),
}


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers)


def _alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
    )


def _require_file(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(
            f"{what} weight file {str(p)!r} not found: LPIPS/FID weights cannot be "
            "downloaded here; point the experiment's metrics section to local files"
        )
    return p


class Lpips(nn.Module):
    """LPIPS distance (Zhang et al. 2018) from user-supplied weight files.

    Parameters
    ----------
    net : "vgg" | "alex"
    backbone : path to a state dict of the torchvision-layout ``features`` module
        (keys ``features.<i>.weight``/``bias`` or ``<i>.weight``/``bias``).
    heads : path to the official LPIPS linear-head state dict (keys
        ``lin<k>.model.1.weight`` of shape [1, C_k, 1, 1], k = 0..4).

    Input: x, x_hat [H, W, 3] uint8. Output: float >= 0 (0 for identical images).
    """

    # Input scaling layer of the official implementation (inputs in [-1, 1]).
    _SHIFT = (-0.030, -0.088, -0.188)
    _SCALE = (0.458, 0.448, 0.450)

    def __init__(self, net: str, backbone: str | Path, heads: str | Path) -> None:
        super().__init__()
        if net not in _LPIPS_TAPS:
            raise ValueError(f"lpips net {net!r} must be one of {sorted(_LPIPS_TAPS)}")
        self.taps, channels = _LPIPS_TAPS[net]
        self.features = _vgg16_features() if net == "vgg" else _alexnet_features()
        state = torch.load(_require_file(backbone, "LPIPS backbone"), map_location="cpu")
        state = {k.removeprefix("features."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if k.split(".")[0].isdigit()}
        self.features.load_state_dict(state, strict=True)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        head_state = torch.load(_require_file(heads, "LPIPS linear-head"), map_location="cpu")
        for k, lin in enumerate(self.lins):
            assert isinstance(lin, nn.Conv2d)
            key = f"lin{k}.model.1.weight"
            if key not in head_state:
                raise ValueError(f"LPIPS head file lacks {key!r}; has {sorted(head_state)[:6]}")
            lin.weight.data.copy_(head_state[key])
        self.shift: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("shift", torch.tensor(self._SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(self._SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def _taps(self, img: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], (img - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                out.append(h / (h.norm(dim=1, keepdim=True) + 1e-10))
            if i >= self.taps[-1]:
                break
        return out

    @torch.no_grad()
    def forward(self, x: np.ndarray, x_hat: np.ndarray) -> float:
        _check_pair(x, x_hat)
        pair = np.stack([x, x_hat]).transpose(0, 3, 1, 2)
        t = torch.from_numpy(np.ascontiguousarray(pair)).float() / 127.5 - 1.0
        total = torch.zeros(())
        for lin, f in zip(self.lins, self._taps(t), strict=True):
            total = total + lin((f[0:1] - f[1:2]) ** 2).mean()
        return float(total)


# ---------------------------------------------------------------------- FID


class FeatureExtractor:
    """A user-supplied TorchScript feature network for FID (e.g. an exported Inception).

    Contract: input float32 [B, 3, H, W] in [0, 1]; output [B, D] features (any
    resizing the network needs happens inside it).
    """

    def __init__(self, path: str | Path) -> None:
        file = _require_file(path, "FID feature extractor")
        with warnings.catch_warnings():  # TorchScript is deprecated but is the format asked for
            warnings.simplefilter("ignore", DeprecationWarning)
            self.module = torch.jit.load(str(file), map_location="cpu").eval()

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images [B, H, W, 3] uint8 -> features [B, D] float64."""
        t = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 255.0
        feats = self.module(t)
        if feats.ndim != 2 or feats.shape[0] != images.shape[0]:
            raise ValueError(f"feature extractor returned {tuple(feats.shape)}, expected [B, D]")
        return feats.double().numpy()


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [n, D] (Heusel 2017).

    FID = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)); needs n >= 2 per set.
    """
    from scipy import linalg

    if (feats_a.ndim != 2 or feats_a.shape[1:] != feats_b.shape[1:]
            or min(len(feats_a), len(feats_b)) < 2):
        raise ValueError(f"FID needs two [n >= 2, D] sets, got {feats_a.shape}, {feats_b.shape}")
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    cov_a = np.atleast_2d(np.cov(feats_a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(feats_b, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.all(np.isfinite(root)):  # singular product (few samples): regularise
            eps = 1e-6 * np.eye(len(cov_a))
            root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = np.real(root)  # discard imaginary round-off
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * root))
