# FAISS side of bench/bins.ts: IndexBinaryHash(b=16) with nflip 0/1/2 and IndexBinaryMultiHash
# (2 x 16, nflip 1) over the same 32-bit codes and queries, k nearest, 2 threads.
# usage: faiss_bins.py DATABASE QUERIES KTH K   (uint8 [n, 4] little-endian bytes of each int32;
# KTH: the exact k-th distance of every query as uint32) -> one JSON object on stdout.
import json
import sys
import time

import numpy as np
import faiss


def main():
    db_file, q_file, kth_file, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    xb = np.fromfile(db_file, dtype=np.uint8).reshape(-1, 4)
    xq = np.fromfile(q_file, dtype=np.uint8).reshape(-1, 4)
    kth = np.fromfile(kth_file, dtype=np.uint32).astype(np.int64)
    faiss.omp_set_num_threads(2)
    rows = []

    def measure(index, label, build_s):
        index.search(xq[:10], k)  # warm-up
        t = time.perf_counter()
        D, I = index.search(xq, k)
        s = time.perf_counter() - t
        # Distance-based recall: a returned face counts when its distance is at most the exact
        # k-th distance (ties at the k-th distance are equally correct answers).
        found = ((I >= 0) & (D.astype(np.int64) <= kth[:, None])).sum(axis=1)
        recall = float(np.minimum(found, k).sum()) / (k * len(xq))
        rows.append({"index": label, "queriesPerSecond": len(xq) / s, "recall": recall, "buildSeconds": build_s})

    t = time.perf_counter()
    h = faiss.IndexBinaryHash(32, 16)
    h.add(xb)
    build = time.perf_counter() - t
    for nflip in (0, 1, 2):
        h.nflip = nflip
        measure(h, f"IndexBinaryHash(b=16) nflip {nflip}", build)
    del h
    t = time.perf_counter()
    m = faiss.IndexBinaryMultiHash(32, 2, 16)
    m.add(xb)
    build = time.perf_counter() - t
    m.nflip = 1
    measure(m, "IndexBinaryMultiHash(2x16) nflip 1", build)
    print(json.dumps({"faiss": faiss.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
