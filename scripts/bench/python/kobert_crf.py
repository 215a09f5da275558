"""The reference project's model (eagle705/pytorch-bert-crf-ner, model/net.py: KobertCRF) in
plain PyTorch, loaded from a koner model directory, for the benchmarks under scripts/bench.

KobertCRF there is: BERT (pytorch_pretrained_bert's BertModel) -> dropout -> Linear
(`position_wise_ff`) -> CRF (pytorch-crf's `torchcrf.CRF`, batch_first). Its forward builds the
attention mask as `input_ids != [PAD]`, and decodes with `crf.decode(emissions)` — no mask, so
Viterbi runs over every padded position too. Neither package is installed here (Debian's
python3-torch only), so:

- the encoder is scripts/fixtures/model_reference.py's `bert_forward` (Hugging Face's eager
  forward: the same products, F.layer_norm and erf F.gelu) with HF's dropout placements added
  for training. pytorch_pretrained_bert spelled LayerNorm and GELU as several Python-level ops
  (mean, pow, sqrt, erf, ...), so this encoder is, if anything, faster than the one the
  reference ran; its pooler (one [B, 768] x [768, 768] product) is left out;
- the CRF below is written the way pytorch-crf writes it: time-major, vectorised over the batch,
  a Python loop over time steps, and a Python backtrace per sequence.

The weights are koner's model.safetensors, read with scripts/fixtures/io_safetensors.py.
"""

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "fixtures")
sys.path.insert(0, FIXTURES)

import io_safetensors  # noqa: E402  (scripts/fixtures)
import model_reference  # noqa: E402  (scripts/fixtures)

TORCH_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                "I64": torch.int64, "I32": torch.int32, "I8": torch.int8, "U8": torch.uint8}


def load_safetensors(path):
    """{name: tensor} from a safetensors file (pure-Python reader). Matrices stored in fewer bits
    (int8 rows or packed int4 groups with a "<name>_scale" beside them: binding/io/
    quantized_rows.h) are returned as float32, without their scales, as koner reads them."""
    _, _, tensors = io_safetensors.read(path)
    out = {}
    for name, (dtype, shape, raw, _) in tensors.items():
        out[name] = torch.frombuffer(bytearray(raw), dtype=TORCH_DTYPES[dtype]).reshape(shape).clone()
    for name in [n for n in out if n.endswith("_scale") and n[: -len("_scale")] in out]:
        matrix = name[: -len("_scale")]
        if out[matrix].dtype == torch.int8:
            out[matrix] = out[matrix].float() * out.pop(name).float()
        elif out[matrix].dtype == torch.uint8:
            packed, scale = out[matrix], out.pop(name).float()
            values = torch.stack([packed & 15, packed >> 4], 2).float() - 8
            rows, groups = scale.shape
            out[matrix] = (values.reshape(rows, groups, -1) * scale[:, :, None]).reshape(rows, -1)
    return out


def load_config(model_dir):
    """config.json as model_reference.py's snake_case dict, plus the label count."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg["num_labels"] = len(cfg["id2label"])
    return cfg


# ---- CRF, as pytorch-crf (torchcrf 0.7) writes it ---------------------------------------------

class CRF(nn.Module):
    """Linear-chain CRF; transitions[i, j] scores tag i followed by tag j (koner's convention too)."""

    def __init__(self, num_tags, batch_first=True):
        super().__init__()
        self.num_tags = num_tags
        self.batch_first = batch_first
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))

    def forward(self, emissions, tags, mask=None, reduction="sum"):
        """Log-likelihood of `tags` (pytorch-crf's reduction: 'sum', 'mean', 'none')."""
        if mask is None:
            mask = torch.ones_like(tags, dtype=torch.uint8)
        if mask.dtype != torch.uint8:
            mask = mask.to(torch.uint8)
        if self.batch_first:
            emissions = emissions.transpose(0, 1)
            tags = tags.transpose(0, 1)
            mask = mask.transpose(0, 1)
        numerator = self._compute_score(emissions, tags, mask)
        denominator = self._compute_normalizer(emissions, mask)
        llh = numerator - denominator
        if reduction == "none":
            return llh
        if reduction == "sum":
            return llh.sum()
        return llh.mean()

    def decode(self, emissions, mask=None):
        """Best tag list per sequence (Python lists)."""
        if mask is None:
            mask = emissions.new_ones(emissions.shape[:2], dtype=torch.uint8)
        if mask.dtype != torch.uint8:
            mask = mask.to(torch.uint8)
        if self.batch_first:
            emissions = emissions.transpose(0, 1)
            mask = mask.transpose(0, 1)
        return self._viterbi_decode(emissions, mask)

    def _compute_score(self, emissions, tags, mask):
        seq_length, batch_size = tags.shape
        mask = mask.type_as(emissions)
        score = self.start_transitions[tags[0]]
        score = score + emissions[0, torch.arange(batch_size), tags[0]]
        for i in range(1, seq_length):
            score = score + self.transitions[tags[i - 1], tags[i]] * mask[i]
            score = score + emissions[i, torch.arange(batch_size), tags[i]] * mask[i]
        seq_ends = mask.long().sum(dim=0) - 1
        last_tags = tags[seq_ends, torch.arange(batch_size)]
        return score + self.end_transitions[last_tags]

    def _compute_normalizer(self, emissions, mask):
        seq_length = emissions.size(0)
        score = self.start_transitions + emissions[0]
        for i in range(1, seq_length):
            next_score = score.unsqueeze(2) + self.transitions + emissions[i].unsqueeze(1)
            next_score = torch.logsumexp(next_score, dim=1)
            score = torch.where(mask[i].unsqueeze(1).bool(), next_score, score)
        score = score + self.end_transitions
        return torch.logsumexp(score, dim=1)

    def _viterbi_decode(self, emissions, mask):
        seq_length, batch_size = mask.shape
        score = self.start_transitions + emissions[0]
        history = []
        for i in range(1, seq_length):
            next_score = score.unsqueeze(2) + self.transitions + emissions[i].unsqueeze(1)
            next_score, indices = next_score.max(dim=1)
            score = torch.where(mask[i].unsqueeze(1).bool(), next_score, score)
            history.append(indices)
        score = score + self.end_transitions
        seq_ends = mask.long().sum(dim=0) - 1
        best_tags_list = []
        for idx in range(batch_size):
            _, best_last_tag = score[idx].max(dim=0)
            best_tags = [best_last_tag.item()]
            for hist in reversed(history[: seq_ends[idx]]):
                best_last_tag = hist[idx][best_tags[-1]]
                best_tags.append(best_last_tag.item())
            best_tags.reverse()
            best_tags_list.append(best_tags)
        return best_tags_list


# ---- the encoder ------------------------------------------------------------------------------

def bert_forward(w, cfg, ids, mask, training):
    """model_reference.bert_forward with Hugging Face's dropout placements (identity in eval).
    Inference on the CPU runs model_reference's own function; training, and any other device
    (model_reference builds its position ids on the CPU), run this copy of it."""
    if not training and ids.device.type == "cpu":
        return model_reference.bert_forward(w, cfg, ids, mask)
    return bert_forward_copy(w, cfg, ids, mask, training)


def bert_forward_copy(w, cfg, ids, mask, training):
    """model_reference.bert_forward, step for step, with dropout and device-placed position ids."""
    B, T = ids.shape
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hs, eps = H // nh, cfg["layer_norm_eps"]
    p_hidden, p_attn = cfg["hidden_dropout_prob"], cfg["attention_probs_dropout_prob"]

    def ln(x, name):
        return F.layer_norm(x, (H,), w[name + ".weight"], w[name + ".bias"], eps)

    def lin(x, name):
        return F.linear(x, w[name + ".weight"], w[name + ".bias"])

    def heads(x):
        return x.view(B, T, nh, hs).permute(0, 2, 1, 3)

    positions = torch.arange(T, device=ids.device)[None, :]
    x = F.embedding(ids, w["embeddings.word_embeddings.weight"])
    x = x + F.embedding(torch.zeros_like(ids), w["embeddings.token_type_embeddings.weight"])
    x = x + F.embedding(positions, w["embeddings.position_embeddings.weight"])
    x = F.dropout(ln(x, "embeddings.LayerNorm"), p_hidden, training)
    extended = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = heads(lin(x, p + "attention.self.query"))
        k = heads(lin(x, p + "attention.self.key"))
        v = heads(lin(x, p + "attention.self.value"))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (hs ** 0.5)
        probs = F.dropout((scores + extended).softmax(dim=-1), p_attn, training)
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(B, T, H)
        attended = F.dropout(lin(context, p + "attention.output.dense"), p_hidden, training)
        attended = ln(attended + x, p + "attention.output.LayerNorm")
        inner = F.gelu(lin(attended, p + "intermediate.dense"))
        out = F.dropout(lin(inner, p + "output.dense"), p_hidden, training)
        x = ln(out + attended, p + "output.LayerNorm")
    return x


class KobertCRF(nn.Module):
    """The reference's KobertCRF over koner's weights (bert.*, classifier.*, crf.*)."""

    def __init__(self, cfg, weights):
        super().__init__()
        self.cfg = cfg
        self.pad_id = cfg["pad_token_id"]
        # nn.ParameterDict keys may not contain '.', so the encoder's names are escaped.
        self.bert = nn.ParameterDict({
            name[len("bert."):].replace(".", "__"): nn.Parameter(t)
            for name, t in weights.items() if name.startswith("bert.")
        })
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])
        K = cfg["num_labels"]
        self.position_wise_ff = nn.Linear(cfg["hidden_size"], K)
        self.crf = CRF(num_tags=K, batch_first=True)
        with torch.no_grad():
            self.position_wise_ff.weight.copy_(weights["classifier.weight"])
            self.position_wise_ff.bias.copy_(weights["classifier.bias"])
            self.crf.transitions.copy_(weights["crf.transitions"])
            self.crf.start_transitions.copy_(weights["crf.start_transitions"])
            self.crf.end_transitions.copy_(weights["crf.end_transitions"])

    def encoder_weights(self):
        return {name.replace("__", "."): p for name, p in self.bert.items()}

    def emissions(self, input_ids, attention_mask=None):
        if attention_mask is None:
            attention_mask = input_ids.ne(self.pad_id).float()
        hidden = bert_forward(self.encoder_weights(), self.cfg, input_ids, attention_mask,
                              self.training)
        return self.position_wise_ff(self.dropout(hidden))

    def forward(self, input_ids, token_type_ids=None, tags=None):
        """The reference's forward: tags -> log-likelihood; no tags -> decoded tag lists."""
        emissions = self.emissions(input_ids)
        if tags is not None:
            return self.crf(emissions, tags)
        return self.crf.decode(emissions)


def model_arguments():
    """--model DIR --threads N [--device D], as bench/python.ts's startModelServer passes them
    to every script that loads a koner model; sets torch's threads and returns (dir, device)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args.model, torch.device(args.device)


def load_model(model_dir, device="cpu"):
    cfg = load_config(model_dir)
    weights = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    return KobertCRF(cfg, weights).to(device)


def pad_batch(sequences, pad_id, length=None, device="cpu"):
    """[B, length or the longest] int64, padded at the end (keras_pad_fn's 'post')."""
    length = length or max(len(s) for s in sequences)
    out = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq[:length], dtype=torch.long)
    return out.to(device)
