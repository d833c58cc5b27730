"""semcomm: end-to-end simulator of semantic image communication links.

Data flow (one stage per subpackage)::

    image x ──► segmentation ──► s (trainIds)
       │                          │
       └──────► codecs.encode(x, s) ──► Payload (bytes) ──► channels.Link ──► bytes + lost ranges
                                                                               │
    x_hat, s_hat ◄── codecs.decode(received) ◄─────────────────────────────────┘
       │
       └──► metrics (mIoU of the judge on x_hat, PSNR, MS-SSIM) ──► runner ──► results/

The boundary between ``semcomm`` and ``channels`` is a NumPy ``uint8`` array of bytes.
"""

__version__ = "0.1.0"
