"""The link on a GPU (see channels/gpu/decoder.py and chain.py)."""
