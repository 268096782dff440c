"""Are maps the same with a warm cache, a cold cache and no cache? On real multilingual rows.

Builds ROWS rows (default 3,000) of real text nobody here wrote: Debian package descriptions
(English, duplicates kept as they occur in the archive) and translated messages from the
system's gettext catalogues (German, French, Spanish, Russian, Japanese, Portuguese, Chinese,
Arabic). Then, for two ways of batching the embeddings:

- ``padded``: the old recipe, rows sorted by token length and batched 32 at a time, each batch
  padded to its longest row;
- ``by-length``: the current one, a batch holds rows of one token length only (no padding);

it computes the embeddings and the UMAP, PCA and t-SNE maps (seed 1) in four cache states:
no cache, a cold cache, a warm cache (every row embedded first, as ``loupe embed`` does) and a
half-warm cache (a random half embedded first, the rest computed by the map's run), and prints
how far each differs from the no-cache run. It also times both batchings on 2,000 texts.

Run: ``PYTHONPATH=. python tests/bench/reproducibility.py [ROWS]`` on Debian (the English text
comes from apt's package lists). Output: tests/bench/results/reproducibility.txt.
"""

from __future__ import annotations

import gettext
import glob
import random
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.cache.backends import MemoryBackend
from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.maps.projection import ProjectionParams
from engine.model import inference
from engine.model.models import load_model, resolve_model

LANGUAGES = ["de", "fr", "es", "ru", "ja", "pt_BR", "zh_CN", "ar"]
PACKAGES = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"


def debian_descriptions() -> list[str]:
    listing = subprocess.run(
        ["/usr/lib/apt/apt-helper", "cat-file", PACKAGES], capture_output=True, text=True, check=True
    ).stdout
    texts = []
    for block in listing.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("Description:")]
        if lines and len(lines[0]) > 60:
            texts.append(lines[0][len("Description:") :].strip())
    return texts


def catalogue_messages(language: str) -> list[str]:
    messages = set()
    for path in sorted(glob.glob(f"/usr/share/locale/{language}/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as file:
                catalogue: Any = gettext.GNUTranslations(file)
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        for message in catalogue._catalog.values():
            if isinstance(message, str) and len(message) > 40 and "%" not in message:
                messages.add(" ".join(message.split()))
    return sorted(messages)


def build_rows(rows: int) -> list[str]:
    rng = random.Random(0)
    other = []
    for language in LANGUAGES:
        messages = catalogue_messages(language)
        other += rng.sample(messages, min(len(messages), rows // 18))
    english = rng.sample(debian_descriptions(), rows - len(other))
    texts = english + other
    rng.shuffle(texts)
    return texts


def padded_batches(lengths: Any) -> list[list[int]]:
    """The old batching: one group in token-length order, so batches pad to their longest row."""
    return [[int(i) for i in np.argsort(-lengths, kind="stable")]]


BATCHINGS: dict[str, Callable[[Any], list[list[int]]]] = {
    "padded": padded_batches,
    "by-length": inference.length_groups,
}


def engine_on(model: Any, cache: Cache) -> Engine:
    engine = Engine(cache, device="cpu")
    engine._loaded = model
    return engine


def maps_in_states(model: Any, texts: list[str]) -> dict[str, dict[str, Any]]:
    """Per cache state: the embeddings and each method's map (seed 1)."""
    half = sorted(random.Random(1).sample(range(len(texts)), len(texts) // 2))
    states: dict[str, dict[str, Any]] = {}
    for state in ("no cache", "cold", "warm", "half-warm"):
        engine = engine_on(model, Cache(None) if state == "no cache" else Cache(MemoryBackend(2 << 30)))
        if state == "warm":
            engine.embeddings(texts)
        if state == "half-warm":
            engine.embeddings([texts[i] for i in half])
        run = engine.embeddings(texts)
        result: dict[str, Any] = {"vectors": run.vectors, "from cache": run.from_cache}
        for method in ("umap", "pca", "tsne"):
            params = ProjectionParams.from_options(method, seed=1)
            result[method] = engine.projection(run.vectors, params, input_id=run.input_id)
        states[state] = result
    return states


def throughput(model: Any, texts: list[str]) -> dict[str, float]:
    """Texts per second of each batching, interleaved twice in the same run (best of the two)."""
    best: dict[str, float] = {}
    for _ in range(2):
        for name, batching in BATCHINGS.items():
            inference.length_groups = batching
            start = time.perf_counter()
            inference.embed_texts(model, texts)
            rate = len(texts) / (time.perf_counter() - start)
            best[name] = max(best.get(name, 0.0), rate)
    inference.length_groups = BATCHINGS["by-length"]
    return best


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    texts = build_rows(rows)
    model = load_model(resolve_model("minilm"), device="cpu")
    duplicates = len(texts) - len(set(texts))
    print(f"{len(texts)} rows ({duplicates} repeat an earlier row), MiniLM on the CPU, seed 1")
    for name, batching in BATCHINGS.items():
        inference.length_groups = batching
        states = maps_in_states(model, texts)
        reference = states["no cache"]
        print(f"\nbatching {name}: largest difference from the no-cache run")
        print(
            f"  {'state':10} {'from cache':>10} {'vectors':>10} {'rows':>5} "
            f"{'umap':>9} {'pca':>9} {'tsne':>9}"
        )
        for state, result in states.items():
            delta = np.abs(result["vectors"] - reference["vectors"]).max(axis=1)
            maps = [float(np.abs(result[m] - reference[m]).max()) for m in ("umap", "pca", "tsne")]
            print(
                f"  {state:10} {result['from cache']:>10} {delta.max():>10.2e} {int((delta > 0).sum()):>5} "
                + " ".join(f"{value:>9.3g}" for value in maps)
            )
    inference.length_groups = BATCHINGS["by-length"]
    sample = texts[:2000]
    rates = throughput(model, sample)
    print(f"\nthroughput on {len(sample)} of these texts (best of two, interleaved):")
    for name, rate in rates.items():
        print(f"  {name:10} {rate:7.1f} texts/s")
    print(f"  by-length / padded = {rates['by-length'] / rates['padded']:.3f}")


if __name__ == "__main__":
    main()
