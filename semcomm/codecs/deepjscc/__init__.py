"""DeepJSCC: the analog baseline (image -> complex channel symbols -> image).

``codec.py`` registers the ``deepjscc`` codec (payload kind "symbols"); ``model.py``
holds the networks; ``train.py`` the trainer; ``config.py`` the validated YAML config.
See docs/deepjscc.md.
"""

from semcomm.codecs.deepjscc import codec as _codec  # noqa: F401  (registers "deepjscc")
