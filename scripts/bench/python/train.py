"""Training throughput of the reference project's KobertCRF (kobert_crf.py) written the common
way; the server side of bench/train.ts.

    train.py --model DIR --threads N [--device cpu|cuda]

Requests (one JSON object per line, see serve.py):
  {"op": "load", "ids": [[...], ...], "tags": [[...], ...], "batch": 32}
        training examples ([CLS] pieces [SEP] ids and tag ids, prepared by koner from the KMOU
        training corpus), in the order a shuffling DataLoader would visit them
  {"op": "run", "steps": S, "start": i, "autocast": "float32" | "bfloat16"}
        seconds for S optimizer steps over batches i, i+1, ... (wrapping around); bfloat16 runs
        the emissions under torch.autocast (weights, optimizer and CRF stay float32)

One step, as the reference's train_bert_crf.py and most PyTorch NER code write it: the batch's
ids and tags padded to the batch's longest example (dynamic padding: less work than the
reference's fixed max_len, which it reached by truncating at 30 pieces), model.train() (dropout
on), emissions, pytorch-crf's NLL with the padding mask (a Python loop over time steps),
reduction 'mean', loss.backward(), clip_grad_norm_(1.0), torch.optim.AdamW (lr 5e-4, weight
decay 0.01 except biases and LayerNorm weights, eps 1e-8; PyTorch's default implementation),
optimizer.zero_grad(). Left out (less work for Python): the reference's extra crf.decode of
every training batch for its accuracy log, and the learning-rate scheduler.
"""

import time

import torch

import kobert_crf
from serve import serve


def main():
    model_dir, device = kobert_crf.model_arguments()
    torch.manual_seed(100)
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    model = kobert_crf.load_model(model_dir, device)
    no_decay = ["bias", "LayerNorm__weight", "LayerNorm.weight"]
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in named if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=5e-4, eps=1e-8)
    state = {"batches": []}

    def load(ids, tags, batch):
        batches = []
        for begin in range(0, len(ids), batch):
            batches.append((ids[begin : begin + batch], tags[begin : begin + batch]))
        state["batches"] = batches
        return {"batches": len(batches)}

    def step(ids, tags, autocast):
        x = kobert_crf.pad_batch(ids, model.pad_id, None, device)
        y = kobert_crf.pad_batch(tags, 0, None, device)
        mask = x.ne(model.pad_id)
        model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast == "bfloat16"):
            emissions = model.emissions(x, mask.float())
        emissions = emissions.float()
        loss = -model.crf(emissions, y, mask, reduction="mean")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    def run(steps, start=0, autocast="float32"):
        batches = state["batches"]
        if sync:
            sync()
        begin = time.perf_counter()
        sentences = 0
        losses = []
        for s in range(steps):
            ids, tags = batches[(start + s) % len(batches)]
            losses.append(step(ids, tags, autocast))
            sentences += len(ids)
        if sync:
            sync()
        return {"seconds": time.perf_counter() - begin, "sentences": sentences, "loss": losses[-1]}

    serve(
        {"load": load, "run": run},
        {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device)},
    )


if __name__ == "__main__":
    main()
