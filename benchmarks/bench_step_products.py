"""The per-step matrix product of a recurrent kernel, out += h · W at a step's shape, through each route the
native kernels can take (src/rnnkit/native/kernels.cpp, ``StepWeight``), timed side by side in one process:

* ATen's GEMM (``out.addmm_(h, W)``): MKL repacks W at every call;
* MKL's packed GEMM: W packed once (``cblas_sgemm_pack``), each step ``cblas_sgemm_compute``;
* bf16 products (mixed precision): oneDNN's bf16 ``mm`` then the widening add the kernels used before, against
  MKL's ``cblas_gemm_bf16bf16f32`` adding into the float32 output in place.

MKL is called through ctypes on torch's own libtorch_cpu (the symbols the kernels reference), so each MKL row pays
a ctypes call (~1-2 µs) that the kernels do not; the ATen rows pay a Python call likewise.

Usage: ``python benchmarks/bench_step_products.py [--shapes 32x256x256 ...] [--iters 500]`` (B x K x N)
"""

from __future__ import annotations

import argparse
import ctypes
import os

import torch
from bench_step_anatomy import best_time as best_of

ROW_MAJOR, NO_TRANS, PACKED, B_MATRIX = 101, 111, 151, 162


def main() -> None:
    from rnnkit.precision import cpu_bf16_flags, cpu_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["32x256x256", "32x256x768", "32x256x1024", "64x512x512",
                                                           "64x512x1536", "64x512x2048"])
    parser.add_argument("--iters", type=int, default=500)
    args = parser.parse_args()
    lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
    for name in ("cblas_sgemm_pack_get_size", "cblas_sgemm_pack", "cblas_sgemm_compute", "cblas_gemm_bf16bf16f32"):
        if not hasattr(lib, name):
            raise SystemExit(f"this torch's libtorch_cpu does not export {name}: the kernels take ATen's GEMM here")
    lib.cblas_sgemm_pack_get_size.restype = ctypes.c_size_t
    i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    print(f"{cpu_model()} ({', '.join(cpu_bf16_flags()) or 'no bf16 features'}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    print("| B x K x N | ATen addmm_ (µs) | MKL packed (µs) | packed / ATen speed | bf16 mm + widening add (µs) "
          "| MKL bf16 -> fp32 (µs) | speed ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape in args.shapes:
        B, K, N = map(int, shape.split("x"))
        h, w, out = torch.randn(B, K), torch.randn(K, N), torch.zeros(B, N)
        packed = torch.empty(lib.cblas_sgemm_pack_get_size(B_MATRIX, B, N, K) // 4 + 16)
        lib.cblas_sgemm_pack(i(ROW_MAJOR), i(B_MATRIX), i(NO_TRANS), i(B), i(N), i(K), f(1.0), p(w.data_ptr()),
                             i(N), p(packed.data_ptr()))
        t_aten = best_of(lambda: out.addmm_(h, w), args.iters)
        compute_args = (i(ROW_MAJOR), i(NO_TRANS), i(PACKED), i(B), i(N), i(K), p(h.data_ptr()), i(K),
                        p(packed.data_ptr()), i(N), f(1.0), p(out.data_ptr()), i(N))
        t_packed = best_of(lambda: lib.cblas_sgemm_compute(*compute_args), args.iters)
        w16, h16 = w.to(torch.bfloat16), torch.empty(B, K, dtype=torch.bfloat16)
        t_mm16 = best_of(lambda: out.add_(h.to(torch.bfloat16) @ w16), args.iters)

        def mkl16():
            h16.copy_(h)
            lib.cblas_gemm_bf16bf16f32(i(ROW_MAJOR), i(NO_TRANS), i(NO_TRANS), i(B), i(N), i(K), f(1.0),
                                       p(h16.data_ptr()), i(K), p(w16.data_ptr()), i(N), f(1.0),
                                       p(out.data_ptr()), i(N))
        t_mkl16 = best_of(mkl16, args.iters)
        print(f"| {shape} | {t_aten * 1e6:.1f} | {t_packed * 1e6:.1f} | {t_aten / t_packed:.2f}x | "
              f"{t_mm16 * 1e6:.1f} | {t_mkl16 * 1e6:.1f} | {t_mm16 / t_mkl16:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
