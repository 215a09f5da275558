"""SentencePiece's Python binding on KoBERT's tokenizer model; the server side of
bench/tokenizer.ts.

    tokenizer.py --model TOKENIZER.model --vocab VOCAB.json

Requests (one JSON object per line, see serve.py):
  {"op": "load", "sentences": [...]}    the sentences to tokenize (not timed)
  {"op": "run", "variant": V}           seconds for one pass over every sentence, where V is
    "reference"  sp.encode(s, out_type=str) then the vocabulary lookup of each piece, as the
                 reference project does it (gluonnlp's SentencepieceTokenizer returns pieces,
                 its Vocabulary maps them to KoBERT's ids): pieces and ids, no offsets
    "pieces"     sp.encode(s, out_type=str) alone: pieces only, the least work
    "proto"      sp.encode_as_immutable_proto(s), read into (piece, id, begin, end) tuples:
                 pieces, SentencePiece's own ids and byte offsets
"""

import argparse
import json
import time

import sentencepiece as spm

from serve import serve


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--vocab", required=True)
    args = parser.parse_args()
    sp = spm.SentencePieceProcessor(model_file=args.model)
    with open(args.vocab, encoding="utf-8") as f:
        token_to_idx = json.load(f)["token_to_idx"]
    unk = token_to_idx["[UNK]"]
    state = {"sentences": []}

    def reference(s):
        return [token_to_idx.get(p, unk) for p in sp.encode(s, out_type=str)]

    def pieces(s):
        return sp.encode(s, out_type=str)

    def proto(s):
        return [(p.piece, p.id, p.begin, p.end) for p in sp.encode_as_immutable_proto(s).pieces]

    variants = {"reference": reference, "pieces": pieces, "proto": proto}

    def load(sentences):
        state["sentences"] = sentences
        return {"sentences": len(sentences)}

    def run(variant):
        fn = variants[variant]
        start = time.perf_counter()
        for s in state["sentences"]:
            fn(s)
        return {"seconds": time.perf_counter() - start}

    serve({"load": load, "run": run}, {"sentencepiece": spm.__version__})


if __name__ == "__main__":
    main()
