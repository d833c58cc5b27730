"""DeepJSCC as a codec whose payload is complex channel symbols, not bytes.

::

    transmitter                                   receiver
    x [H,W,3] uint8 ─► encoder ─► first c maps     ReceivedSymbols(z_hat, noise_var, esno_db)
      ─► z [c (H/f)(W/f)] complex64, mean |z|^2=1     ─► g = 1 / (1 + noise_var)
      ─► SymbolPayload (knob = c / f^2 cu/px)         ─► decoder(z_hat, g, esno_db) ─► x_hat
                    │  channels.analog (MMSE, perfect CSI)  ▲
                    └──────────────────────────────────────┘

The knob is the bandwidth ratio: channel uses per pixel (``RatePoint(knob=ratio)``; the
runner turns ``bandwidth_ratio: [r]`` into it). A bpp target is refused: nothing here is
measured in bits. ``decode`` never raises: a byte payload or malformed symbols give
``Reconstruction.failed``. Without channel noise (``esno_db=None``: the runner's
"error-free" line) the decoder is told the top of its training SNR range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcomm.codecs.base import RatePoint, ReceivedSymbols, Reconstruction, SymbolPayload
from semcomm.codecs.deepjscc.config import ModelConfig, model_config_from_dict
from semcomm.codecs.deepjscc.model import DeepJSCC
from semcomm.codecs.registry import register_codec

#: The shipped model file (configs/deepjscc.yaml, 128 x 256 built-in street scenes).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "deepjscc.pt"
#: Format tag of model files (``train.FORMAT``; repeated so inference never imports
#: training code).
FORMAT = "semcomm-deepjscc-v1"
TRAIN_COMMAND = ("python -m semcomm.codecs.deepjscc.train --config configs/deepjscc.yaml "
                 "--out results/train/deepjscc")


def load_model(path: str | Path, device: str = "cpu"
               ) -> tuple[DeepJSCC, ModelConfig, dict[str, Any]]:
    """A model file -> (network in eval mode, its config, the file's meta and train)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DeepJSCC model file {path} not found. Train it with "
                                f"`{TRAIN_COMMAND}` (docs/deepjscc.md) and copy "
                                f"results/train/deepjscc/model.pt to {DEFAULT_CHECKPOINT}, "
                                "or pass checkpoint=<path>")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError(f"{path}: not a DeepJSCC model file (format "
                         f"{ck.get('format') if isinstance(ck, dict) else None!r}, "
                         f"expected {FORMAT!r})")
    cfg = model_config_from_dict(ck["model"], source=str(path))
    model = DeepJSCC(cfg)
    model.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
    model.to(device).eval()
    return model, cfg, {"meta": ck.get("meta", {}), "train": ck.get("train", {})}


@register_codec("deepjscc")
class DeepJSCCCodec:
    """Image <-> complex symbols (see the module docstring).

    Parameters
    ----------
    checkpoint : str | Path | None
        Model file (None: the shipped ``semcomm/assets/deepjscc.pt``).
    device : str
        Torch device of the networks.
    """

    name = "deepjscc"
    payload_kind = "symbols"

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu") -> None:
        self.model, self.cfg, self.info = load_model(
            DEFAULT_CHECKPOINT if checkpoint is None else checkpoint, device)
        self.device = device

    @classmethod
    def from_model(cls, model: DeepJSCC, device: str = "cpu") -> DeepJSCCCodec:
        """A codec around an in-memory network (tests, the untrained baseline)."""
        self = cls.__new__(cls)
        self.model, self.cfg, self.info = model.to(device).eval(), model.cfg, {}
        self.device = device
        return self

    @property
    def ratios(self) -> list[float]:
        """Bandwidth ratios (channel uses per pixel) the model sends."""
        return self.cfg.ratios

    def channel_uses(self, shape: tuple[int, int], ratio: float) -> int:
        """Complex symbols sent for an H x W image at ``ratio`` (ValueError if not sendable)."""
        self._check_shape(shape)
        return self.cfg.ratio_channels(ratio) * (shape[0] // self.cfg.factor) * (
            shape[1] // self.cfg.factor)

    def _check_shape(self, shape: tuple[int, int]) -> None:
        f = self.cfg.factor
        if shape[0] < f or shape[1] < f or shape[0] % f or shape[1] % f:
            raise ValueError(f"image size {shape[0]}x{shape[1]} not codable by DeepJSCC: H "
                             f"and W must be positive multiples of {f}")

    @torch.no_grad()
    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint
               ) -> SymbolPayload:
        """image [H,W,3] uint8 -> SymbolPayload; rate.knob = bandwidth ratio (cu/px)."""
        if rate.knob is None:
            raise ValueError(f"deepjscc sends complex symbols, not bits: give a bandwidth "
                             f"ratio (knob or bandwidth_ratio, one of {self.ratios}), not "
                             f"{rate.label}")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be [H, W, 3] uint8, got {image.dtype} {image.shape}")
        shape = (int(image.shape[0]), int(image.shape[1]))
        self._check_shape(shape)
        c = self.cfg.ratio_channels(float(rate.knob))
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        z = self.model.encode(x.to(self.device).float() / 255.0, c)[0]
        return SymbolPayload(symbols=z.cpu().numpy().astype(np.complex64),
                             num_pixels=shape[0] * shape[1], shape=shape,
                             knob=float(rate.knob))

    @torch.no_grad()
    def decode(self, received: Any) -> Reconstruction:
        """ReceivedSymbols -> Reconstruction (never raises)."""
        if not isinstance(received, ReceivedSymbols):
            return Reconstruction.failed(getattr(received, "shape", (1, 1)),
                                         "deepjscc decodes complex symbols, got "
                                         f"{type(received).__name__}")
        try:
            return Reconstruction(image=self._decode(received))
        except (ValueError, RuntimeError, TypeError) as err:
            return Reconstruction.failed(received.shape, f"deepjscc: {err}")

    def _decode(self, r: ReceivedSymbols) -> np.ndarray:
        shape = (int(r.shape[0]), int(r.shape[1]))
        self._check_shape(shape)
        z = np.asarray(r.symbols, dtype=np.complex64)
        nv = np.asarray(r.noise_var, dtype=np.float32)
        if z.ndim != 1 or nv.shape != z.shape or not np.all(np.isfinite(z)):
            raise ValueError(f"symbols {z.shape} and noise_var {nv.shape} must be equal 1-D "
                             "finite arrays")
        gain = 1.0 / (1.0 + np.maximum(nv, 0.0))  # |h|^2 / (|h|^2 + no); 0 where h = 0
        if r.equaliser == "zf":
            z = (z * gain).astype(np.complex64)  # ZF -> MMSE (the decoder is trained on MMSE)
        elif r.equaliser != "mmse":
            raise ValueError(f"equaliser {r.equaliser!r} not one of ['mmse', 'zf']")
        snr = self.cfg.snr_range_db[1] if r.esno_db is None else float(r.esno_db)
        dev = self.device
        x_hat = self.model.decode(torch.from_numpy(z)[None].to(dev),
                                  torch.from_numpy(gain.astype(np.float32))[None].to(dev),
                                  torch.tensor([snr], dtype=torch.float32, device=dev), shape)
        out = (x_hat[0].permute(1, 2, 0).cpu().numpy() * 255.0).round().clip(0, 255)
        return out.astype(np.uint8)

    def payload_fields(self, payload: SymbolPayload) -> dict[str, float | int]:
        """Recorded per result line as ``x_<name>``."""
        return {"symbols": payload.channel_uses}
