"""AM-VQ: activation-map-based vector quantization (arXiv 2406.04740), with real bytes.

Public API::

    from semcomm.codecs.amvq import AMVQ, load_config, activation_map
    cfg = load_config("configs/amvq_compact.yaml")
    model = AMVQ(cfg.model).eval()
    analysis = model.analyze(x)            # per scale: z, indices, activation map A in [0, 1]
    out = model(x, tau=0.3)                # training pass (x_hat, VQ losses, masks A > 1 - tau)

    from semcomm.codecs.amvq import AMVQCodec                 # registered as "amvq"
    codec = AMVQCodec(packet_bytes=509)                       # semcomm/assets/amvq.pt
    payload = codec.encode(image, None, RatePoint(knob=0.3))  # bytes; knob = tau
    rec = codec.decode(ReceivedPayload(payload.data, payload.shape, lost))

See ``docs/amvq.md``.
"""

from semcomm.codecs.amvq.activation import activation_map, quantization_loss, unquantized_mask
from semcomm.codecs.amvq.codec import (
    DEFAULT_CHECKPOINT,
    PAPER_TAU,
    TAU_GRID,
    TRAIN_COMMAND,
    AMVQCodec,
    AMVQEncoded,
    AMVQReceived,
    conceal,
    level_prior,
)
from semcomm.codecs.amvq.config import (
    AMVQConfig,
    DataSource,
    ModelConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)
from semcomm.codecs.amvq.model import AMVQ, AMVQOutput, ScaleAnalysis, count_parameters
from semcomm.codecs.amvq.modelfile import load_model

__all__ = [
    "AMVQ",
    "DEFAULT_CHECKPOINT",
    "PAPER_TAU",
    "TAU_GRID",
    "TRAIN_COMMAND",
    "AMVQCodec",
    "AMVQConfig",
    "AMVQEncoded",
    "AMVQOutput",
    "AMVQReceived",
    "DataSource",
    "ModelConfig",
    "ScaleAnalysis",
    "TrainConfig",
    "activation_map",
    "conceal",
    "config_from_dict",
    "count_parameters",
    "level_prior",
    "load_config",
    "load_model",
    "quantization_loss",
    "unquantized_mask",
]

