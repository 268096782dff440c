"""Attention in float32 on the CPU, while autocast runs the matrix products in bf16.

Under CPU autocast, PyTorch runs ``scaled_dot_product_attention`` in bf16, and its CPU flash
kernel is slower in bf16 than in float32 at the short rows Loupe embeds: 344 against 149 us
for 23 rows of 16 tokens, 947 against 388 us for 64 rows (12 heads of 32, this 2-core
machine), and the bf16 kernel was a fifth of ``loupe embed``'s compute. This attention
function is transformers' own SDPA attention with queries, keys and values in float32 and
autocast off around it. In float32 it is the same computation as "sdpa", bit for bit. In bf16
the vectors are no closer to float32 than with bf16 attention (the bf16 matrix products
around it dominate the difference): lowest cosine to float32 on the 3,926 demo texts 0.999961,
against 0.999966.

It is registered with transformers' documented ``AttentionInterface`` (and the matching mask
function with ``AttentionMaskInterface``) under :data:`NAME`; its name contains "sdpa", so
transformers checks a model supports SDPA before using it.
"""

from __future__ import annotations

import threading
from typing import Any

NAME = "loupe_float32_sdpa"

_registered = False
_register_lock = threading.Lock()


def register() -> str:
    """Register the attention function once per process and return its name."""
    global _registered
    with _register_lock:
        if not _registered:
            from transformers import AttentionInterface, AttentionMaskInterface
            from transformers.masking_utils import sdpa_mask

            AttentionInterface.register(NAME, float32_sdpa_attention)
            AttentionMaskInterface.register(NAME, sdpa_mask)
            _registered = True
    return NAME


def float32_sdpa_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any
) -> tuple[Any, Any]:
    """transformers' SDPA attention computed in float32; the output in the queries' dtype."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    dtype = query.dtype
    if attention_mask is not None and attention_mask.is_floating_point():
        attention_mask = attention_mask.float()
    with torch.autocast("cpu", enabled=False):
        output, weights = sdpa_attention_forward(
            module, query.float(), key.float(), value.float(), attention_mask, **kwargs
        )
    return output.to(dtype), weights
