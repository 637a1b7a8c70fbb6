"""faiss's side of scripts/bench/search_faiss.sh: IndexFlatIP over the same
vectors, searched one query at a time or in batches, on --threads threads.
Prints "queries/s X" and the first query's top k rows, like searchbench."""
import argparse
import time

import faiss
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--dim", type=int, default=512)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--queries", type=int, default=200)
ap.add_argument("--k", type=int, default=10)
ap.add_argument("--threads", type=int, required=True)
a = ap.parse_args()

faiss.omp_set_num_threads(a.threads)
xb = np.fromfile(f"{a.dir}/gallery.f32", dtype="<f4").reshape(-1, a.dim)
xq = np.fromfile(f"{a.dir}/queries.f32", dtype="<f4").reshape(-1, a.dim)
index = faiss.IndexFlatIP(a.dim)
index.add(xb)
del xb
nq, b = a.queries, a.batch
warm = xq[nq:nq + b] if len(xq) >= nq + b else xq[:b]
index.search(warm, a.k)
first = None
t0 = time.perf_counter()
for q in range(0, nq, b):
    _, ids = index.search(xq[q:min(q + b, nq)], a.k)
    if first is None:
        first = ids[0]
el = time.perf_counter() - t0
print(f"queries/s {nq / el:.1f}")
print("top", " ".join(str(i) for i in first))
