"""Inference throughput of the reference project's KobertCRF (kobert_crf.py) on koner's weights,
run the way eagle705/pytorch-bert-crf-ner runs it; the server side of bench/inference.ts.

    inference.py --model DIR --threads N [--device cpu|cuda]

Requests (one JSON object per line, see serve.py):
  {"op": "load", "ids": [[2, ..., 3], ...]}          token ids with [CLS]/[SEP], precomputed by
                                                       koner's tokenizer (tokenization is timed
                                                       separately, row (d))
  {"op": "run", "batch": B, "policy": P, "count": n}  seconds for one pass over the first n
                                                       sentences, in corpus order
  {"op": "emissions", "index": i}                      emissions of sentence i (a sanity check
                                                       that both sides run the same model)

What one pass includes, as the reference's inference.py / evaluation loop does it: for each batch
of B sentences in corpus order, build the padded id matrix (policy "fixed": padded to a fixed
max_len, as the reference's keras_pad_fn does — it used max_len 30 and truncated longer
sentences; here max_len is the longest sentence so that nothing is cut; policy "batch": padded to
the batch's longest sentence, a stronger baseline than the reference; batch 1 needs no padding),
then under model.eval() and torch.no_grad(): attention mask from the ids, BERT, dropout (off),
linear, and pytorch-crf's Viterbi without a mask (the reference's `crf.decode(emissions)`, a
Python loop over time steps plus a Python backtrace), returning Python lists of tag ids. Not
included: tokenization, turning tags into entity strings.
"""

import time

import torch

import kobert_crf
from serve import serve


def main():
    model_dir, device = kobert_crf.model_arguments()
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    model = kobert_crf.load_model(model_dir, device)
    model.eval()
    pad_id = model.pad_id
    state = {"ids": []}

    def load(ids):
        state["ids"] = ids
        return {"sentences": len(ids), "longest": max(len(s) for s in ids)}

    def run(batch, policy, count=None):
        sentences = state["ids"][: count or len(state["ids"])]
        fixed = max(len(s) for s in state["ids"])  # the longest: no sentence is truncated
        if sync:
            sync()
        start = time.perf_counter()
        padded_tokens = 0
        with torch.no_grad():
            for begin in range(0, len(sentences), batch):
                chunk = sentences[begin : begin + batch]
                length = fixed if (policy == "fixed" and batch > 1) else None
                x_input = kobert_crf.pad_batch(chunk, pad_id, length, device)
                padded_tokens += x_input.numel()
                list_of_pred_ids = model(x_input)
                assert len(list_of_pred_ids) == len(chunk)
        if sync:
            sync()
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "sentences": len(sentences), "paddedTokens": padded_tokens}

    def emissions(index):
        ids = kobert_crf.pad_batch([state["ids"][index]], pad_id, None, device)
        with torch.no_grad():
            e = model.emissions(ids)
        return {"emissions": e[0].float().cpu().flatten().tolist()}

    serve(
        {"load": load, "run": run, "emissions": emissions},
        {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device)},
    )


if __name__ == "__main__":
    main()
