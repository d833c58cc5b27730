"""The core every learned codec (SQ-GAN, AM-VQ, ISC) shares; no codec imports another.

::

    trainer.py     one resumable GAN loop; a codec's Trainer supplies hooks
    data.py        training sources, resumable batch order, DataLoader over steps
    perceptual.py  segmenter-feature / LPIPS perceptual terms, LossResult
    modelfile.py   the model-file format (weights_only), writer and loader
    priors.py      static entropy-coder priors from the model file's histograms
    config.py      shared config pieces (loop keys, VQ keys, data sources, YAML)
    cli.py         the arguments every ``semcomm train <codec>`` shares

Inference (``codec.py``, ``modelfile.py`` of each codec) uses only ``modelfile``,
``priors`` and ``config``; the rest is training code. See ``docs/training.md``.
"""
