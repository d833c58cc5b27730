"""ISC: coarse-to-fine image semantic coding (Huang et al., GLOBECOM 2021), with real bytes.

A base layer (the losslessly coded semantic map at a chosen resolution plus a compact VQ
latent) from which a SPADE generator fully generates a coarse image, and an
enhancement layer of residual-VQ stages that code the difference between the image and
the base image; the number of stages sent is the rate knob.

Public API::

    from semcomm.codecs.isc import ISC, load_config
    cfg = load_config("configs/isc_compact.yaml")
    model = ISC(cfg.model).eval()

    from semcomm.codecs.isc import ISCCodec                   # registered as "isc"
    codec = ISCCodec(packet_bytes=509)                        # semcomm/assets/isc.pt
    payload = codec.encode(image, labels, RatePoint(knob=2))  # knob = enhancement stages
    rec = codec.decode(ReceivedPayload(payload.data, payload.shape, lost))

See ``docs/isc.md``.
"""

from semcomm.codecs.isc.codec import (
    DEFAULT_CHECKPOINT,
    TRAIN_COMMAND,
    ISCCodec,
    ISCEncoded,
    ISCReceived,
)
from semcomm.codecs.isc.config import (
    ISCConfig,
    ModelConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)
from semcomm.codecs.isc.model import ISC, ISCOutput, count_parameters
from semcomm.codecs.isc.modelfile import load_model
from semcomm.codecs.isc.semmap import (
    majority_downsample,
    map_from_symbols,
    map_symbols,
    upsample_map,
)

__all__ = [
    "DEFAULT_CHECKPOINT",
    "ISC",
    "TRAIN_COMMAND",
    "ISCCodec",
    "ISCConfig",
    "ISCEncoded",
    "ISCOutput",
    "ISCReceived",
    "ModelConfig",
    "TrainConfig",
    "config_from_dict",
    "count_parameters",
    "load_config",
    "load_model",
    "majority_downsample",
    "map_from_symbols",
    "map_symbols",
    "upsample_map",
]

