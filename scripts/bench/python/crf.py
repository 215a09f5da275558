"""The PyTorch CRF of scripts/fixtures/crf_reference.py (written the way the common libraries
write it: vectorised over the batch, a Python loop over time steps, autograd for the backward
pass, a Python backtrace per sequence) as a benchmark server for bench/crf.ts.

    crf.py --threads N [--device cpu|cuda]

Requests (one JSON object per line, see serve.py):
  {"op": "setup", "batch": B, "time": T, "tags": K, "lengths": [...], "dtype": "float32"}
  {"op": "nll", "iters": n}      seconds per call of NLL forward + backward (reduction 'mean',
                                 gradients of emissions, transitions, start and end)
  {"op": "viterbi", "iters": n}  seconds per call of 1-best Viterbi with its backtrace
On CUDA the tensors stay on the device and each timing is bracketed by synchronize().
"""

import argparse
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "fixtures"))

from crf_reference import ReferenceCrf  # noqa: E402  (scripts/fixtures)
from serve import serve  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    state = {}

    def setup(batch, time, tags, lengths, dtype="float32", seed=0):
        gen = torch.Generator().manual_seed(seed)
        dt = getattr(torch, dtype)

        def randn(*shape):
            return (torch.randn(*shape, generator=gen) * 2).to(device=device, dtype=dt)

        lengths = torch.tensor(lengths, device=device)
        state["emissions"] = randn(batch, time, tags)
        state["transitions"] = randn(tags, tags).requires_grad_(True)
        state["start"] = randn(tags).requires_grad_(True)
        state["end"] = randn(tags).requires_grad_(True)
        state["mask"] = torch.arange(time, device=device).unsqueeze(0) < lengths.unsqueeze(1)
        state["gold"] = torch.randint(0, tags, (batch, time), generator=gen).to(device)
        state["crf"] = ReferenceCrf(state["transitions"], state["start"], state["end"])
        return {}

    def nll_step():
        em = state["emissions"].detach().requires_grad_(True)
        loss = state["crf"].nll(em, state["gold"], state["mask"], "mean")
        loss.backward()

    def viterbi_step():
        with torch.no_grad():
            state["crf"].viterbi(state["emissions"], state["mask"])

    def per_call(step, iters):
        sync()
        begin = time.perf_counter()
        for _ in range(iters):
            step()
        sync()
        return {"seconds": (time.perf_counter() - begin) / iters}

    serve(
        {
            "setup": setup,
            "nll": lambda iters: per_call(nll_step, iters),
            "viterbi": lambda iters: per_call(viterbi_step, iters),
        },
        {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device)},
    )


if __name__ == "__main__":
    main()
