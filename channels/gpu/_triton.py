"""Import Triton once, in the mode this machine can run.

Triton decides at kernel *definition* time whether a ``@triton.jit`` function is compiled
for a GPU or run by its NumPy interpreter (``TRITON_INTERPRET=1``). Without a CUDA
device this module switches the interpreter on before Triton is imported, so the same
kernel source runs on CPU tensors (slowly: for tests). With CUDA the kernels compile and
take CUDA tensors only.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is missing
    triton = None
    tl = None

#: True when kernels run in Triton's interpreter (CPU tensors), False when compiled.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _patch_interpreter_index() -> None:
    """Triton 3.6's interpreter turns a loaded scalar into a Python int with
    ``int(ndarray of shape (1,))``, which NumPy 2 rejects, so ``range(e0, e1)`` over
    loaded bounds fails on the CPU; index with the array's single element instead."""
    import triton.runtime.interpreter as interp

    original = getattr(interp, "_patch_lang_tensor", None)
    if original is None:  # another Triton version: nothing to patch
        return

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interp._patch_lang_tensor = patched


if triton is not None and INTERPRET:
    _patch_interpreter_index()
#: Version of the Triton the GPU path was built and tested with (constraints.txt).
TRITON_PIN = "3.6.0"


def require_triton() -> None:
    """Raise a one-line error when Triton is not importable."""
    if triton is None:
        raise RuntimeError(f"the GPU link needs triton (pip install triton=={TRITON_PIN})")


def check_device(t: torch.Tensor, name: str) -> None:
    """Kernels take CUDA tensors when compiled and CPU tensors when interpreted."""
    want = "cpu" if INTERPRET else "cuda"
    if t.device.type != want:
        raise ValueError(f"{name} is on {t.device}, but Triton kernels here need {want} "
                         f"tensors (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')})")
