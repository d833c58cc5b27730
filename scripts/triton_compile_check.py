"""Compile every Triton kernel of channels.gpu for an H200 (sm_90) on a machine without a GPU.

The CPU tests run the kernels in Triton's interpreter, which accepts some code the
compiler rejects; this script runs the real compiler (Triton's bundled LLVM and ptxas,
no GPU or driver needed) on each kernel in each specialisation the link uses, so a
compile error shows up before device time is spent::

    PYTHONPATH=/path/to/triton-site:. python scripts/triton_compile_check.py
"""

from __future__ import annotations

import os
import sys
import time

os.environ["TRITON_INTERPRET"] = "0"  # before channels.gpu imports triton

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from channels.gpu import chain, decoder  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)


def _compile(fn, sig: dict[str, str], consts: dict[str, object], warps: int = 4) -> bool:
    start = time.perf_counter()
    try:
        triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts), target=TARGET,
                       options={"num_warps": warps})
    except Exception as err:  # report every failing specialisation
        print(f"FAIL {fn.__name__} {consts} warps={warps}: {type(err).__name__}: {err}")
        return False
    print(f"ok   {fn.__name__} {consts} warps={warps} ({time.perf_counter() - start:.1f} s)")
    return True


def main() -> int:
    ok = True
    f32, i32, i64 = "*fp32", "i32", "*i64"
    demap = dict(xeq_ptr=f32, nv_ptr=f32, levels_ptr=f32, pos_ptr=i64, out_ptr=f32,
                 block_ptr=i64, scr_ptr="*u8", num_sym=i32, n=i32, n_dec=i32, llr_max="fp32")
    mapch = dict(u_ptr="*u8", par_ptr="*i32", src_ptr="*i32", levels_ptr=f32, xeq_ptr=f32,
                 nv_ptr=f32, seed_ptr=i64, block_ptr=i64, no_ptr=f32, scr_ptr="*u8",
                 num_sym=i32, n=i32, k=i32, par_stride=i32, block_symbols=i32)
    chan = dict(x_ptr=f32, xeq_ptr=f32, nv_ptr=f32, seed_ptr=i64, block_ptr=i64, no_ptr=f32,
                num_sym=i32, block_symbols=i32)
    for m in (2, 4, 6, 8):
        for app in sorted({False, m > 2}):
            for scr in (False, True):  # scrambling off / on
                consts = {"M": m, "L": 2 ** (m // 2), "APP": app, "SCR": scr, "BS": 256}
                ok &= _compile(chain._demap_recover_kernel,
                               {**demap, **dict.fromkeys(consts, "constexpr")}, consts)
        for kind in range(4):
            for scr in (False, True):
                consts = {"M": m, "KIND": kind, "SCR": scr, "BS": 256}
                ok &= _compile(chain._map_channel_kernel,
                               {**mapch, **dict.fromkeys(consts, "constexpr")}, consts)
    for kind in range(4):
        consts = {"KIND": kind, "BS": 1024}
        ok &= _compile(chain._channel_kernel, {**chan, **dict.fromkeys(consts, "constexpr")},
                       consts)
    dec = dict(app_ptr=f32, c2v_ptr=f32, uhat_ptr="*u8", iters_ptr="*i32", layer_ptr="*i32",
               edge_col="*i32", edge_shift="*i32", num_cw=i32, n_dec=i32, num_edges=i32, k=i32,
               num_iter=i32, offset="fp32", llr_max="fp32")
    for z, bw, warps in ((192, 1, 8), (192, 2, 4), (6, 1, 4)):  # k=4096 BG1 (Z=192), small
        consts = {"Z": z, "ZP": 1 << (z - 1).bit_length(), "BW": bw, "NUM_LAYERS": 46,
                  "KCOLS": 22}
        ok &= _compile(decoder._decode_kernel, {**dec, **dict.fromkeys(consts, "constexpr")},
                       consts, warps)
    print("all kernels compile for sm_90" if ok else "SOME KERNELS FAILED TO COMPILE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
