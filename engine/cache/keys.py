"""Content-addressed cache keys: ``loupe:v<schema>:<kind>:<digest>``.

The digest covers everything the value depends on (model identity, text, layer, pooling,
method and parameters, library versions that change results), so a key is valid on any
machine that computes the same thing, and a changed input can never hit a stale value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

# 2: values are bound to their key (format 2) and model identities cover config and tokenizer
# files; version-1 keys are never looked up again, so old values are plain misses that expire.
SCHEMA_VERSION = 2
PREFIX = f"loupe:v{SCHEMA_VERSION}:"
KINDS = ("emb", "proj", "attn", "ana", "cmp")  # ana: analysis of a map; cmp: a comparison of two runs


def _canonical(parts: Mapping[str, Any]) -> bytes:
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def cache_key(kind: str, parts: Mapping[str, Any]) -> str:
    """The key for a value of ``kind`` that depends on exactly ``parts`` (JSON-able)."""
    digest = hashlib.blake2b(_canonical(parts), digest_size=20).hexdigest()
    return f"{PREFIX}{kind}:{digest}"


def text_key_factory(kind: str, context: Mapping[str, Any]) -> Callable[[str], str]:
    """Keys for many texts sharing one context (model, layer, pooling): hashes the context once."""
    base = hashlib.blake2b(_canonical(context), digest_size=20)
    base.update(b"\x00")

    def key_for(text: str) -> str:
        digest = base.copy()
        digest.update(text.encode("utf-8", "surrogatepass"))  # any str, even a lone surrogate
        return f"{PREFIX}{kind}:{digest.hexdigest()}"

    return key_for


def kind_pattern(kind: str | None = None) -> str:
    """A SCAN pattern for every key of ``kind`` (or of every kind) in this schema."""
    return f"{PREFIX}{kind or '*'}:*"
