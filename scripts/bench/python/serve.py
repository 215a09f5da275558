"""The request loop every benchmark script under scripts/bench/python runs.

The TypeScript side (bench/python.ts) starts a script once, waits for its first line
({"ready": true, ...}), then sends one JSON request per line on stdin and reads one JSON reply
per line on stdout: {"ok": true, ...result} or {"ok": false, "error": "..."}. Anything else a
script prints must go to stderr. Keeping the process alive lets the caller interleave koner's
and Python's timed rounds (A B A B ...) without paying Python's start-up between them.
"""

import json
import sys
import time
import traceback


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(handlers, ready_info):
    """Answers requests {"op": name, ...arguments} with handlers[name](**arguments)."""
    reply({"ready": True, **ready_info})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            op = request.pop("op")
            if op == "exit":
                reply({"ok": True})
                return
            result = handlers[op](**request)
            reply({"ok": True, **(result or {})})
        except Exception as exc:  # reported to the caller, which fails the benchmark
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"})


def timed(fn, sync=None):
    """Seconds one call of fn takes; sync() (e.g. torch.cuda.synchronize) before and after."""
    if sync:
        sync()
    start = time.perf_counter()
    fn()
    if sync:
        sync()
    return time.perf_counter() - start
