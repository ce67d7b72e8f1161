"""`probe neighbours` benchmarks, measured side by side in one run.

  build  Index build for the CLIP-BPE word list on a ViT-B-16 text tower (random weights): the exact
         fast encoding vs naive `encode_text(fast=False)` on the same fixed random subsample (the
         padded path is too slow for the full list), identical top-k checked; then the fast path
         building the full-list index (cached, so `cold` can reuse it).
  query  Warm search latency on a 50k-word flat index at k=10 (single queries and batched), and HNSW
         latency + recall@10 against exact (random unit vectors, and the real CLIP-BPE embeddings).
  e2e    One query at a time in a long-lived process on ViT-B-16@random with the 49,882-word English
         list: encoding the prompt, the exact scan, and `text_neighbours` end to end (builds the
         index first unless --cache-dir holds it: minutes on 2 cores).
  cold   `probe neighbours` end to end in a fresh subprocess with a cached index (with and without the
         model's text snapshot), wall time and peak
         RSS (the built-in model; shapes-tiny@random when its weights are not trained yet).

Run: python benchmarks/bench_neighbours.py [--parts build query e2e cold] [--subsample 1024] [--save]
Indexes go to a throwaway cache folder unless --cache-dir is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import add_save_argument, finish, log

BIG_MODEL = "ViT-B-16@random"


def bench_build(subsample: int, seed: int, full: bool) -> dict:
    import numpy as np
    import torch
    from probe_neighbours.index import IndexParams, make_index, open_index
    from probe_neighbours.vocabularies import load_vocab

    from probe.session import Session

    session = Session.open(BIG_MODEL, device="cpu")
    vocab = load_vocab("clip-bpe")
    rng = np.random.default_rng(seed)
    sub = [vocab.words[i] for i in sorted(rng.choice(len(vocab.words), subsample, replace=False))]
    session.encode_text(sub[:16]), session.encode_text(sub[:16], fast=False)  # warm-up both paths

    t0 = time.perf_counter()
    fast = session.encode_text(sub)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = session.encode_text(sub, fast=False)
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast_again = session.encode_text(sub)
    t_fast = min(t_fast, time.perf_counter() - t0)

    queries = session.encode_text(
        ["a photo of a dog", "a red star", "a famous actor", "a beach at sunset", "music", "violence", *sub[:58]]
    ).numpy()
    s_fast, i_fast = make_index(fast.numpy(), IndexParams()).search(queries, 10)
    s_naive, i_naive = make_index(naive.numpy(), IndexParams()).search(queries, 10)
    same = bool((i_fast == i_naive).all())
    log(
        f"[build] {BIG_MODEL} text tower, {subsample} CLIP-BPE words (random subsample, seed {seed}), "
        f"torch threads {torch.get_num_threads()}"
    )
    log(f"  naive encode_text(fast=False): {t_naive:8.2f} s  ({t_naive / subsample * 1e3:.1f} ms/word)")
    log(
        f"  exact fast encode_text:        {t_fast:8.2f} s  ({t_fast / subsample * 1e3:.2f} ms/word)   speed-up "
        f"{t_naive / t_fast:.1f}x"
    )
    log(
        f"  identical top-10 for {len(queries)} queries: {same}   max |emb diff| "
        f"{(fast - naive).abs().max().item():.2e}   "
        f"max |score diff| {abs(s_fast - s_naive).max():.2e}   fast repeat max|d| "
        f"{(fast - fast_again).abs().max().item():.1e}"
    )
    out = {
        "model": BIG_MODEL,
        "words": subsample,
        "naive_seconds": round(t_naive, 3),
        "fast_seconds": round(t_fast, 3),
        "speedup": round(t_naive / t_fast, 2),
        "identical_top10": same,
    }
    if full:
        t0 = time.perf_counter()
        ix = open_index(session, vocab, IndexParams(), rebuild=True)
        t_full = time.perf_counter() - t0
        log(
            f"  full list: fast index build of {len(vocab.words):,} words (encode + IndexFlatIP + cache write): "
            f"{t_full:.1f} s "
            f"({t_full / len(vocab.words) * 1e3:.2f} ms/word); naive path extrapolated from the subsample: "
            f"{t_naive / subsample * len(vocab.words):.0f} s"
        )
        del ix
        out["full_list_words"] = len(vocab.words)
        out["full_list_fast_build_seconds"] = round(t_full, 2)
    return out


def bench_e2e(vocab_name: str, n_queries: int, k: int) -> dict:
    """One query at a time as a long-lived process answers it on a real-size model: `text_neighbours` with
    the index already open (encode the prompt, search, rank), and its two parts timed alone: what share
    of the wait the exact scan is, so what a faster scan could save."""
    import numpy as np
    from probe_neighbours.index import open_index
    from probe_neighbours.query import text_neighbours
    from probe_neighbours.vocabularies import load_vocab

    from probe.session import Session

    session = Session.open(BIG_MODEL, device="cpu")
    vocab = load_vocab(vocab_name)
    t0 = time.perf_counter()
    index = open_index(session, vocab)  # built (minutes) unless cached
    t_open = time.perf_counter() - t0
    rng = np.random.default_rng(3)
    words = [vocab.words[i] for i in rng.choice(len(vocab.words), n_queries, replace=False)]
    prompts = [f"a photo of a {w}" for w in words]
    for p in prompts[:3]:  # warm-up
        text_neighbours(session, [p], [vocab.name], k, indexes=[index])
    cols: dict[str, list[float]] = {"encode": [], "search": [], "total": []}
    for p in prompts:
        t0 = time.perf_counter()
        emb = session.encode_text([p]).numpy()
        cols["encode"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        index.search(emb, k)
        cols["search"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        text_neighbours(session, [p], [vocab.name], k, indexes=[index])
        cols["total"].append(time.perf_counter() - t0)
    med = {key: statistics.median(v) * 1e3 for key, v in cols.items()}
    log(
        f"[e2e] {BIG_MODEL} with the {vocab.name!r} list ({len(vocab.words):,} words, {index.index.d}-d flat "
        f"index, {index.status} in {t_open:.2f} s), {n_queries} prompts 'a photo of a WORD', k={k}, one at a "
        f"time; medians: encode the prompt {med['encode']:.2f} ms, exact scan {med['search']:.2f} ms, "
        f"text_neighbours end to end {med['total']:.2f} ms (the scan: {med['search'] / med['total']:.0%})"
    )
    return {
        "model": BIG_MODEL,
        "vocab": vocab.name,
        "words": len(vocab.words),
        "dim": int(index.index.d),
        "queries": n_queries,
        "k": k,
        "index_open_seconds": round(t_open, 3),
        "encode_median_ms": round(med["encode"], 3),
        "search_median_ms": round(med["search"], 3),
        "end_to_end_median_ms": round(med["total"], 3),
        "search_share": round(med["search"] / med["total"], 4),
    }


def _latency(index, queries, k: int) -> tuple[float, float, float]:
    """(median wall ms, p95 wall ms, mean CPU ms) of one-query searches; CPU time (all threads of
    this process) is what the search costs when the machine is shared, wall what a user waits."""
    times = []
    cpu0 = time.process_time()
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], k)
        times.append((time.perf_counter() - t0) * 1e3)
    cpu = (time.process_time() - cpu0) / len(queries) * 1e3
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], cpu


def bench_query(n: int, dim: int, k: int, n_queries: int, hnsw_random: bool) -> dict:
    import faiss
    import numpy as np
    from probe_neighbours.index import IndexParams, make_index, recall_at_k

    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    flat = make_index(base, IndexParams())
    threads = faiss.omp_get_max_threads()
    out: dict = {"n": n, "dim": dim, "k": k, "queries": n_queries, "flat": []}
    log(
        f"[query] flat index, {n:,} random unit vectors x {dim} (ViT-B-16 width), k={k}; "
        f"the exact scan's cost does not depend on the data"
    )
    for t in sorted({1, threads}):
        faiss.omp_set_num_threads(t)
        flat.search(queries[:5], k)
        med, p95, cpu = _latency(flat, queries, k)
        t0, c0 = time.perf_counter(), time.process_time()
        flat.search(queries, k)
        batched, batched_cpu = (
            (time.perf_counter() - t0) / n_queries * 1e3,
            (time.process_time() - c0) / n_queries * 1e3,
        )
        log(
            f"  faiss threads {t}: one query at a time: wall median {med:.3f} ms, p95 {p95:.3f} ms, CPU "
            f"{cpu:.3f} ms/query   "
            f"batched ({n_queries} in one call): wall {batched:.3f} ms/query, CPU {batched_cpu:.3f} ms/query"
        )
        out["flat"].append(
            {
                "faiss_threads": t,
                "one_query_median_ms": round(med, 3),
                "one_query_p95_ms": round(p95, 3),
                "batched_ms_per_query": round(batched, 3),
            }
        )
    faiss.omp_set_num_threads(threads)
    if hnsw_random:
        t0 = time.perf_counter()
        hnsw = make_index(base, IndexParams(kind="hnsw"))
        t_hnsw = time.perf_counter() - t0
        med_h, p95_h, cpu_h = _latency(hnsw, queries, k)
        recall = float(recall_at_k(hnsw, base, queries, k))
        log(
            f"  hnsw (M=32, efC=200, efS=256): build {t_hnsw:.1f} s, one query wall median {med_h:.3f} ms, p95 "
            f"{p95_h:.3f} ms, "
            f"CPU {cpu_h:.3f} ms; recall@10 vs exact {recall:.3f} (random data: the hard case)"
        )
        out["hnsw_random"] = {
            "build_seconds": round(t_hnsw, 2),
            "one_query_median_ms": round(med_h, 3),
            "recall_at_10": round(recall, 4),
        }
    clip_bpe = _hnsw_on_clip_bpe(k)
    if clip_bpe:
        out["clip_bpe"] = clip_bpe
    return out


def _hnsw_on_clip_bpe(k: int) -> dict | None:
    """recall@10 of HNSW on the real CLIP-BPE embeddings cached by `build`, with held-out words as queries."""
    import numpy as np
    from probe_neighbours.index import IndexParams, make_index, recall_at_k

    from probe.files.cache import cache_dir

    cached = sorted(cache_dir("indexes").glob("clip-bpe.flat.*.faiss"))
    if not cached:
        log("  (no cached CLIP-BPE index: run the build part first for recall on real embeddings)")
        return None
    import faiss

    flat = faiss.read_index(str(cached[0]))
    emb = flat.reconstruct_n(0, flat.ntotal)
    rng = np.random.default_rng(1)
    held = rng.choice(len(emb), 500, replace=False)
    keep = np.setdiff1d(np.arange(len(emb)), held)
    t0 = time.perf_counter()
    hnsw = make_index(emb[keep], IndexParams(kind="hnsw"))
    t_build = time.perf_counter() - t0
    med, _, cpu = _latency(hnsw, emb[held], k)
    recall = float(recall_at_k(hnsw, emb[keep], emb[held], k))
    log(
        f"  hnsw on {len(keep):,} CLIP-BPE embeddings ({BIG_MODEL}), 500 held-out words as queries: build "
        f"{t_build:.1f} s, "
        f"recall@10 vs exact {recall:.3f}, one query wall median {med:.3f} ms, CPU {cpu:.3f} ms"
    )
    return {
        "hnsw_recall_at_10": round(recall, 4),
        "hnsw_one_query_median_ms": round(med, 3),
    }


def _measure(cmd: list[str], env: dict) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s (user+sys), peak RSS MiB, exit code, stderr tail) of one fresh process;
    os.wait4 gives that child's own rusage. CPU time is the cost that survives a shared machine."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None  # stderr=PIPE
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, err.decode()[-500:]


def bench_cold(runs: int, big: bool) -> list[dict]:
    """The CLI run with the model's text snapshot (no open_clip import), the same run loading the
    model (PROBE_TEXT_SNAPSHOTS=0: no snapshot opened or written), and the bare imports each path
    needs, alternated in every round so the ratios hold on a loaded machine. Every process exits
    without the interpreter's teardown, as `probe` does."""
    from importlib import resources

    probe = str(Path(sys.executable).with_name("probe"))
    weights = resources.files("probe.models").joinpath("weights/shapes-tiny.safetensors")
    model = "shapes-tiny" if weights.is_file() else "shapes-tiny@random"
    env = dict(os.environ)
    env_plain = dict(env, PROBE_TEXT_SNAPSHOTS="0")
    imports_model = [sys.executable, "-c", "import os, torch, open_clip, faiss; os._exit(0)"]
    imports_snapshot = [sys.executable, "-c", "import os, torch, faiss; os._exit(0)"]
    cases = [(model, ["neighbours", "a red star", "--k", "10"])]
    if big:  # the full CLIP-BPE index the build part cached (random weights: no snapshot applies)
        cases.append((BIG_MODEL, ["neighbours", "a famous actor", "--k", "10", "--vocab", "clip-bpe"]))
    out = []
    for spec, args in cases:
        cmd = [probe, "--model", spec, *args]
        first = _measure(cmd, env)  # builds (or finds) the cached index, and the text snapshot
        if first[3] != 0:
            log(f"[cold] {' '.join(cmd)} failed: {first[4]}")
            continue
        rows = []
        for _ in range(runs):
            snap = _measure(cmd, env)
            loaded = _measure(cmd, env_plain)
            bare_snap, bare_model = _measure(imports_snapshot, env), _measure(imports_model, env)
            rows.append(
                (snap[0], snap[1], snap[2], loaded[0], bare_snap[0], bare_model[0], loaded[0] / snap[0], loaded[2])
            )
        med = [statistics.median(col) for col in zip(*rows, strict=True)]
        note = (
            ""
            if spec != "shapes-tiny@random"
            else " (built-in weights not trained yet: same architecture, random weights)"
        )
        log(
            f"[cold] `probe --model {spec} {' '.join(args)}` in a fresh process, cached index{note}; medians of "
            f"{runs} rounds"
        )
        log(
            f"  CLI as users run it: wall {med[0]:.2f} s (min {min(r[0] for r in rows):.2f}, max "
            f"{max(r[0] for r in rows):.2f}), "
            f"CPU {med[1]:.2f} s, peak RSS {max(r[2] for r in rows):.0f} MiB"
        )
        log(
            f"  same command without a text snapshot (loads the model through open_clip): wall {med[3]:.2f} s, "
            f"peak RSS {max(r[7] for r in rows):.0f} MiB; ratio {med[6]:.2f}x"
        )
        log(f"  bare imports, then os._exit: torch + faiss {med[4]:.2f} s, torch + open_clip + faiss {med[5]:.2f} s")
        out.append(
            {
                "command": " ".join(["probe", "--model", spec, *args]),
                "rounds": runs,
                "snapshot_wall_median_seconds": round(med[0], 3),
                "snapshot_wall_range_seconds": [round(min(r[0] for r in rows), 3), round(max(r[0] for r in rows), 3)],
                "model_load_wall_median_seconds": round(med[3], 3),
                "bare_import_torch_faiss_seconds": round(med[4], 3),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--parts", nargs="+", default=["build", "query", "e2e", "cold"], choices=["build", "query", "e2e", "cold"]
    )
    ap.add_argument("--e2e-vocab", default="english", help="word list for the e2e part")
    ap.add_argument("--e2e-queries", type=int, default=100)
    ap.add_argument("--subsample", type=int, default=1024, help="words timed on both paths")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-full", action="store_true", help="skip the fast full-list build")
    ap.add_argument("--n", type=int, default=50_000, help="index size for the query part")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--no-hnsw-random", action="store_true", help="skip the HNSW build on the random 50k set")
    ap.add_argument("--runs", type=int, default=5, help="cold runs")
    ap.add_argument("--cache-dir", default=None, help="cache folder (default: a throwaway one)")
    add_save_argument(ap)
    args = ap.parse_args()
    os.environ["PROBE_CACHE_DIR"] = args.cache_dir or tempfile.mkdtemp(prefix="bench-neighbours-")
    log(f"cache folder {os.environ['PROBE_CACHE_DIR']}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    results: dict[str, dict | list[dict]] = {}
    if "build" in args.parts:
        results["build"] = bench_build(args.subsample, args.seed, not args.no_full)
    if "query" in args.parts:
        results["query"] = bench_query(args.n, args.dim, 10, args.queries, not args.no_hnsw_random)
    if "e2e" in args.parts:
        results["e2e"] = bench_e2e(args.e2e_vocab, args.e2e_queries, 10)
    if "cold" in args.parts:
        from probe.files.cache import cache_dir

        results["cold"] = bench_cold(args.runs, big=any(cache_dir("indexes").glob("clip-bpe.flat.*.faiss")))
    finish("bench_neighbours", args, results)


if __name__ == "__main__":
    main()
