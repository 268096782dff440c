"""Make ``resources/self_test_vectors.json``: the reference vectors ``loupe self-test`` checks.

The reference is sentence-transformers' own ``SentenceTransformer(folder).encode(...)`` on the
default model's folder, in float32 on the CPU, never Loupe's output (which the self-test checks
against it). Run it again only when the default model changes:

    PYTHONPATH=. .venv/bin/python tests/make_self_test_vectors.py
"""

from __future__ import annotations

import json
from pathlib import Path

# English, accented Latin and CJK: the tokenizer's lower-casing, accent stripping and
# per-character CJK splitting each take part.
TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Café crème, naïve façade: à bientôt, señor Müller!",
    "東京は日本の首都です。北京是中国的首都。",
)

OUT = Path(__file__).resolve().parents[1] / "resources" / "self_test_vectors.json"


def main() -> None:
    import numpy as np
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    from engine.model.models import DEFAULT_MODEL, resolve_model

    folder = resolve_model(DEFAULT_MODEL).path
    torch.set_num_threads(1)  # the same sums in the same order, whatever the machine's cores
    model = SentenceTransformer(str(folder), device="cpu").float()
    vectors = np.asarray(model.encode(list(TEXTS), convert_to_numpy=True), dtype=np.float32)
    record = {
        "model": DEFAULT_MODEL,
        "made_by": f"sentence-transformers {sentence_transformers.__version__}, "
        f"torch {torch.__version__}, float32 on the CPU",
        "texts": list(TEXTS),
        # float32 values written as the shortest decimal that reads back to the same float32.
        "vectors": [[float(np.format_float_positional(v, unique=True)) for v in row] for row in vectors],
    }
    OUT.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {vectors.shape[0]} vectors of {vectors.shape[1]}")


if __name__ == "__main__":
    main()
