# FAISS side of bench/scan.ts: IndexBinaryFlat (exhaustive Hamming k-NN) over the same 32-bit
# codes. Speaks the line protocol of bench/python-child.ts: one command on stdin, one JSON object
# back on stdout.
#   load CODES QUERIES THREADS   raw little-endian int32 files (= FAISS binary codes of d = 32,
#                                4 bytes each, byte 0 the low bits); omp threads
#   search K NQ                  k-NN of the first NQ queries: {"seconds", "distances": [NQ * K]}
#   quit
import json
import sys
import time

import numpy as np


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    try:
        import faiss
    except Exception as e:  # noqa: BLE001
        reply({"error": f"cannot import faiss: {e}"})
        return
    index = None
    queries = None
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "quit":
                break
            if parts[0] == "load":
                codes = np.fromfile(parts[1], dtype=np.uint8).reshape(-1, 4)
                queries = np.fromfile(parts[2], dtype=np.uint8).reshape(-1, 4)
                faiss.omp_set_num_threads(int(parts[3]))
                t = time.perf_counter()
                index = faiss.IndexBinaryFlat(32)
                index.add(codes)
                reply({"ok": True, "count": int(index.ntotal), "addSeconds": time.perf_counter() - t,
                       "version": faiss.__version__, "threads": faiss.omp_get_max_threads()})
            elif parts[0] == "search":
                k, nq = int(parts[1]), int(parts[2])
                q = np.ascontiguousarray(queries[:nq])
                t = time.perf_counter()
                distances, _ids = index.search(q, k)
                seconds = time.perf_counter() - t
                reply({"seconds": seconds, "distances": distances.astype(np.int64).ravel().tolist()})
            else:
                reply({"error": f"unknown command {parts[0]}"})
        except Exception as e:  # noqa: BLE001
            reply({"error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
