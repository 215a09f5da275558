"""Exports a koner model directory's encoder and classifier to ONNX, for the onnxruntime-node
peer of bench/peer.ts. Generated at bench time into a temporary directory, never committed.

    onnx_export.py --model DIR --out FILE.onnx

The graph is kobert_crf.py's emissions (Hugging Face's eager BERT: erf GELU, post-LayerNorm,
additive mask of finfo.min, then the classifier) on the same weights, traced by
torch.onnx.export with dynamic batch and length axes:

    input_ids      int64 [batch, pieces]
    attention_mask int64 [batch, pieces]  (1 = real piece)
    emissions      float32 [batch, pieces, labels]

What a Node user running onnxruntime would serve: the CRF is not part of it (no standard ONNX
op), so the peer's figure covers the encoder and classifier only.
"""

import argparse
import math

import torch
import torch.nn.functional as F
from torch import nn

import kobert_crf


class Emissions(nn.Module):
    """The encoder and classifier as one traceable module: every shape comes from the inputs,
    so the exported graph takes any batch and length."""

    def __init__(self, cfg, weights):
        super().__init__()
        self.cfg = cfg
        for name, t in weights.items():
            if name.startswith("bert.") or name.startswith("classifier."):
                self.register_buffer(name.replace(".", "__"), t.float().contiguous())

    def w(self, name):
        return getattr(self, name.replace(".", "__"))

    def forward(self, input_ids, attention_mask):
        cfg = self.cfg
        H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
        hs, eps = H // nh, cfg["layer_norm_eps"]
        B, T = input_ids.shape[0], input_ids.shape[1]

        def ln(x, name):
            return F.layer_norm(x, (H,), self.w(name + ".weight"), self.w(name + ".bias"), eps)

        def lin(x, name):
            return F.linear(x, self.w(name + ".weight"), self.w(name + ".bias"))

        def heads(x):
            return x.reshape(B, T, nh, hs).permute(0, 2, 1, 3)

        # Positions 0..T-1 from the input itself (a traced arange of a Python int would be a
        # constant of the example's length).
        positions = torch.cumsum(torch.ones_like(input_ids), dim=1) - 1
        p = "bert.embeddings."
        x = F.embedding(input_ids, self.w(p + "word_embeddings.weight"))
        x = x + F.embedding(torch.zeros_like(input_ids), self.w(p + "token_type_embeddings.weight"))
        x = x + F.embedding(positions, self.w(p + "position_embeddings.weight"))
        x = ln(x, p + "LayerNorm")
        extended = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for i in range(cfg["num_hidden_layers"]):
            p = f"bert.encoder.layer.{i}."
            q = heads(lin(x, p + "attention.self.query"))
            k = heads(lin(x, p + "attention.self.key"))
            v = heads(lin(x, p + "attention.self.value"))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hs)
            probs = (scores + extended).softmax(dim=-1)
            context = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, T, H)
            attended = ln(lin(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            inner = F.gelu(lin(attended, p + "intermediate.dense"))
            x = ln(lin(inner, p + "output.dense") + attended, p + "output.LayerNorm")
        return lin(x, "classifier")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cfg = kobert_crf.load_config(args.model)
    weights = kobert_crf.load_safetensors(f"{args.model}/model.safetensors")
    module = Emissions(cfg, weights).eval()
    ids = torch.full((2, 7), cfg["pad_token_id"], dtype=torch.long)
    ids[:, 0], ids[0, 1:6], ids[1, 1:4] = 2, 10, 11
    mask = ids.ne(cfg["pad_token_id"]).long()
    with torch.no_grad():
        torch.onnx.export(
            module,
            (ids, mask),
            args.out,
            input_names=["input_ids", "attention_mask"],
            output_names=["emissions"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "pieces"},
                "attention_mask": {0: "batch", 1: "pieces"},
                "emissions": {0: "batch", 1: "pieces"},
            },
            opset_version=14,
            do_constant_folding=True,
        )


if __name__ == "__main__":
    main()
