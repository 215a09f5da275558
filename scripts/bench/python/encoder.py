"""The encoder's forward in PyTorch (kobert_crf.py, the reference's KobertCRF on koner's weights)
and the GEMM peak of this machine; the server side of bench/encoder.ts.

    encoder.py --model DIR --threads N [--device cpu|cuda]

Requests (one JSON object per line, see serve.py):
  {"op": "forward", "batch": B, "time": T, "iters": n}
        seconds of the best of n emissions() calls on random ids [B, T] (no padding), under
        model.eval() and torch.no_grad(); on CUDA under torch.autocast(bfloat16), each call
        bracketed by synchronize()
  {"op": "gemm"}
        the GEMM peak in GFLOP/s, best of 10 calls per shape. CPU: float32 torch.matmul (the
        BLAS LibTorch links: OpenBLAS here) and oneDNN's inner product (torch._C._nn.
        mkldnn_linear, the oneDNN inside the same LibTorch), each on 2048x2048x2048 and the FFN's
        2048x768x3072, the better shape reported; also the reduced-precision peaks the same
        LibTorch reaches on those shapes: "bfloat16" (torch.matmul in bfloat16, oneDNN where the
        CPU has AVX512_BF16) and "int8" (torch.ops.quantized.linear_dynamic on the onednn
        engine), each null where this torch cannot run it. CUDA: bfloat16 and float32
        torch.matmul on 8192x8192x8192.
"""

import contextlib
import time

import torch

import kobert_crf
from serve import serve


def best_seconds(fn, sync, rounds):
    fn()
    sync()
    best = float("inf")
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    model_dir, device = kobert_crf.model_arguments()
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = kobert_crf.load_model(model_dir, device)
    model.eval()

    def forward(batch, time, iters):
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(5, 7995, (batch, time), generator=gen).to(device)

        def call():
            # (torch 1.13 checks CUDA's bf16 support even for a disabled CUDA autocast.)
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
            with torch.no_grad(), autocast:
                model.emissions(ids)

        return {"seconds": best_seconds(call, sync, iters)}

    def gemm():
        out = {}
        if cuda:
            n = 8192
            for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
                a = torch.randn(n, n, device=device, dtype=dtype)
                b = torch.randn(n, n, device=device, dtype=dtype)
                out[name] = 2 * n**3 / best_seconds(lambda: a @ b, sync, 10) / 1e9
            return out
        shapes = {"square": (2048, 2048, 2048), "ffn": (2048, 768, 3072)}
        blas, onednn = {}, {}
        for name, (m, k, n) in shapes.items():
            a = torch.randn(m, k)
            b = torch.randn(k, n)
            w = b.t().contiguous()  # Linear's [out, in] weight
            flops = 2 * m * k * n
            blas[name] = flops / best_seconds(lambda: a @ b, sync, 10) / 1e9
            onednn[name] = flops / best_seconds(
                lambda: torch._C._nn.mkldnn_linear(a.to_mkldnn(), w, None).to_dense(), sync, 10
            ) / 1e9
        out["openblas"] = max(blas.values())
        out["onednn"] = max(onednn.values())
        out["shapes"] = {"openblas": blas, "onednn": onednn}
        out["bfloat16"] = out["int8"] = None
        try:
            bf16 = {}
            for name, (m, k, n) in shapes.items():
                a = torch.randn(m, k).bfloat16()
                b = torch.randn(k, n).bfloat16()
                bf16[name] = 2 * m * k * n / best_seconds(lambda: a @ b, sync, 10) / 1e9
            out["bfloat16"] = max(bf16.values())
        except RuntimeError:
            pass
        if "onednn" in torch.backends.quantized.supported_engines:
            torch.backends.quantized.engine = "onednn"
            int8 = {}
            for name, (m, k, n) in shapes.items():
                a = torch.randn(m, k)
                w = torch.randn(n, k)
                scales = w.abs().amax(1) / 127
                q = torch.quantize_per_channel(w, scales, torch.zeros(n, dtype=torch.long), 0, torch.qint8)
                packed = torch.ops.quantized.linear_prepack(q, None)
                int8[name] = 2 * m * k * n / best_seconds(
                    lambda: torch.ops.quantized.linear_dynamic(a, packed), sync, 10
                ) / 1e9
            out["int8"] = max(int8.values())
        return out

    serve(
        {"forward": forward, "gemm": gemm},
        {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device)},
    )


if __name__ == "__main__":
    main()
