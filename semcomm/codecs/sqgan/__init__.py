"""SQ-GAN: semantic masked VQ-GAN codec (model, losses, trainer, link-facing codec).

Public API::

    from semcomm.codecs.sqgan import SQGAN, load_config, load_model
    cfg = load_config("configs/sqgan_compact.yaml")
    model = SQGAN(cfg.model).eval()
    tokens = model.encode_tokens(x, s, m_x=0.5, m_s=0.5)    # transmitter
    decoded = model.decode_tokens(tokens, missing_x, missing_s)  # receiver

    from semcomm.codecs.sqgan import SQGANCodec             # registered as "sqgan"
    codec = SQGANCodec(packet_bytes=509)                    # semcomm/assets/sqgan.pt
    payload = codec.encode(image, labels, RatePoint(knob=0.2875))   # bytes
    rec = codec.decode(ReceivedPayload(payload.data, payload.shape, lost))

See ``docs/sqgan.md``.
"""

from semcomm.codecs.sqgan.codec import (
    DEFAULT_CHECKPOINT,
    M_GRID,
    TRAIN_COMMAND,
    AnalyticRate,
    SQGANCodec,
    SQGANReceived,
)
from semcomm.codecs.sqgan.config import (
    BranchConfig,
    ModelConfig,
    SQGANConfig,
    TrainConfig,
    load_config,
)
from semcomm.codecs.sqgan.model import (
    SQGAN,
    BranchTokens,
    SQGANDecoded,
    SQGANTokens,
    analytic_bpp,
    count_parameters,
    kept_count,
    labels_from_logits,
    one_hot_labels,
)
from semcomm.codecs.sqgan.modelfile import load_model

__all__ = [
    "DEFAULT_CHECKPOINT",
    "M_GRID",
    "SQGAN",
    "TRAIN_COMMAND",
    "AnalyticRate",
    "BranchConfig",
    "BranchTokens",
    "ModelConfig",
    "SQGANCodec",
    "SQGANConfig",
    "SQGANDecoded",
    "SQGANReceived",
    "SQGANTokens",
    "TrainConfig",
    "analytic_bpp",
    "count_parameters",
    "kept_count",
    "labels_from_logits",
    "load_config",
    "load_model",
    "one_hot_labels",
]

