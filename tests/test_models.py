"""Any local Hugging Face model (DESIGN.md §4): folders, the local hub cache, decoders.

Every model here is built from a config in a temporary folder and every tokenizer is trained
in memory, so the tests never reach the network.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.errors import BadInputError, ModelError
from engine.model.models import load_model, resolve_model

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park and the cat watched",
    "rain fell on the quiet town all night",
    "the model reads every word of the text",
]
SHORT = "the cat sat"
LONG = "a dog ran in the park and the cat watched the rain fell on the quiet town all night"


def _tokenizer() -> Any:
    """A word-level fast tokenizer trained on :data:`SENTENCES`, offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"]))
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )


def _save(model: Any, tokenizer: Any, folder: Path) -> Path:
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _gpt2(folder: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = _tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=len(tokenizer))
    return _save(GPT2LMHeadModel(config), tokenizer, folder)


def _llama(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        vocab_size=len(tokenizer),
    )
    return _save(LlamaForCausalLM(config), tokenizer, folder)


BUILDERS = {"gpt2": _gpt2, "llama": _llama}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def decoder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny decoder model folder (safetensors weights and a tokenizer)."""
    name = str(request.param)
    return BUILDERS[name](tmp_path_factory.mktemp(name))


def _reference_last(folder: Path, text: str) -> Any:
    """The model's own last hidden state at the last token, straight from transformers."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    with torch.inference_mode():
        hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state
    return hidden[0, -1].numpy()


def test_decoder_resolves_to_last_token_pooling(decoder: Path) -> None:
    spec = resolve_model(str(decoder))
    assert spec.is_decoder
    assert spec.pooling == "last"
    assert spec.width == 32
    assert spec.max_length == 64
    assert spec.identity.startswith(f"{decoder.name}@")


def test_decoder_embeddings_match_transformers_and_ignore_padding(decoder: Path) -> None:
    engine = Engine(Cache(None), model=str(decoder), device="cpu", precision="fp32")
    run = engine.embeddings([SHORT, LONG])
    assert run.vectors.shape == (2, 32)
    np.testing.assert_allclose(run.vectors[0], _reference_last(decoder, SHORT), atol=1e-5)
    np.testing.assert_allclose(run.vectors[1], _reference_last(decoder, LONG), atol=1e-5)
    # Alone (no padding) and again in a fresh engine: the same vector.
    alone = (
        Engine(Cache(None), model=str(decoder), device="cpu", precision="fp32").embeddings([SHORT]).vectors[0]
    )
    np.testing.assert_allclose(alone, run.vectors[0], atol=1e-5)


def test_left_padding_tokenizer_is_padding_robust(tmp_path: Path, decoder: Path) -> None:
    """A folder whose tokenizer pads on the left still gives each text its own vector."""
    folder = tmp_path / "left"
    shutil.copytree(decoder, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["padding_side"] = "left"
    config_path.write_text(json.dumps(config))
    vectors = (
        Engine(Cache(None), model=str(folder), device="cpu", precision="fp32")
        .embeddings([SHORT, LONG])
        .vectors
    )
    np.testing.assert_allclose(vectors[0], _reference_last(decoder, SHORT), atol=1e-5)


def test_decoder_attention_matches_eager_transformers(decoder: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    maps = Engine(Cache(None), model=str(decoder), device="cpu", precision="fp32").attention(LONG)
    tokenizer = AutoTokenizer.from_pretrained(str(decoder))
    model = AutoModel.from_pretrained(str(decoder), attn_implementation="eager").eval()
    with torch.inference_mode():
        output = model(**tokenizer(LONG, return_tensors="pt"), output_attentions=True)
    reference = torch.stack([a[0] for a in output.attentions]).numpy()
    tokens = len(LONG.split())
    assert maps.attentions.shape == (2, 2, tokens, tokens)
    np.testing.assert_allclose(maps.attentions, reference, atol=1e-5)


def test_decoder_layer_out_of_range(decoder: Path) -> None:
    engine = Engine(Cache(None), model=str(decoder), device="cpu", precision="fp32")
    with pytest.raises(BadInputError, match="out of range"):
        engine.embeddings([SHORT], layer=99)
    assert engine.embeddings([SHORT], layer=1).vectors.shape == (1, 32)


def _broken(kind: str, folder: Path, decoder: Path) -> Path:
    shutil.copytree(decoder, folder)
    if kind in {"no-weights", "pytorch-bin"}:
        (folder / "model.safetensors").unlink()
    if kind == "pytorch-bin":
        (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    if kind == "no-config":
        (folder / "config.json").unlink()
    return folder


BROKEN = {
    "no-weights": "has no .safetensors weights",
    "pytorch-bin": "has no .safetensors weights",
    "no-config": "has no config.json",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_folder_is_a_model_error(kind: str, tmp_path: Path, decoder: Path) -> None:
    folder = _broken(kind, tmp_path / kind, decoder)
    with pytest.raises(ModelError, match=BROKEN[kind]):
        resolve_model(str(folder))


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_folder_cli_exits_2_with_one_line(kind: str, tmp_path: Path, decoder: Path) -> None:
    folder = _broken(kind, tmp_path / kind, decoder)
    data = tmp_path / "data.csv"
    with data.open("w", newline="") as handle:
        csv.writer(handle).writerows([["text"], *([s] for s in SENTENCES)])
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    result = subprocess.run(
        [sys.executable, "-m", "desktop.launcher", "embed", str(data), "--out", str(tmp_path / "x.npy"),
         "--model", str(folder), "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("loupe: ")]
    assert len(lines) == 1, result.stderr
    assert BROKEN[kind] in lines[0]
    assert "Traceback" not in result.stderr


def test_remote_code_folder_is_refused_unless_trusted(tmp_path: Path, decoder: Path) -> None:
    folder = tmp_path / "remote"
    shutil.copytree(decoder, folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config.update(model_type="my_custom_arch", auto_map={"AutoModel": "modeling_custom.CustomModel"})
    config_path.write_text(json.dumps(config))
    spec = resolve_model(str(folder))
    assert not spec.trust_remote_code
    with pytest.raises(ModelError, match="--trust-remote-code"):
        load_model(spec, "cpu")
    assert resolve_model(str(folder), trust_remote_code=True).trust_remote_code


def _fake_hub_cache(root: Path, repo_id: str, source: Path, sha: str) -> Path:
    """The standard hub cache layout: ``models--org--name/{refs/main, snapshots/<sha>/...}``."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    shutil.copytree(source, repo / "snapshots" / sha)
    return repo / "snapshots" / sha


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME"])
def test_hub_id_resolves_from_the_local_cache(
    variable: str, tmp_path: Path, decoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    hub = tmp_path / "hf" / "hub"
    monkeypatch.setenv(variable, str(hub if variable == "HF_HUB_CACHE" else hub.parent))
    snapshot = _fake_hub_cache(hub, "tiny-org/tiny-decoder", decoder, SHA)
    spec = resolve_model("tiny-org/tiny-decoder")
    assert spec.path == snapshot
    assert spec.pooling == "last"
    assert spec.identity.startswith(f"tiny-org/tiny-decoder@{SHA}+")
    # The same weights as a folder: the same digest, a different name.
    assert spec.identity.split("+")[1] == resolve_model(str(decoder)).identity.split("@")[1]
    vectors = (
        Engine(Cache(None), model="tiny-org/tiny-decoder", device="cpu", precision="fp32")
        .embeddings([SHORT])
        .vectors
    )
    np.testing.assert_allclose(vectors[0], _reference_last(decoder, SHORT), atol=1e-5)


def test_hub_revision_is_part_of_the_identity(
    tmp_path: Path, decoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "a"))
    _fake_hub_cache(tmp_path / "a", "org/m", decoder, SHA)
    first = resolve_model("org/m").identity
    other = "f" * 40
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "b"))
    _fake_hub_cache(tmp_path / "b", "org/m", decoder, other)
    assert resolve_model("org/m").identity != first


def test_hub_id_missing_from_cache_names_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(ModelError, match="--allow-download") as caught:
        resolve_model("gpt2")
    assert "not in the Hugging Face cache" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_default_alias_is_unchanged() -> None:
    spec = resolve_model()
    assert spec.name == "minilm"
    assert spec.pooling == "mean"
    assert spec.identity.startswith("model@")


def test_pooling_override_changes_the_vector_and_its_cache_key(minilm: Any) -> None:
    import torch

    from engine.cache.store import Cache
    from engine.core.engine import Engine

    text = "Pooling decides which tokens make the sentence vector."
    mean_engine = Engine(Cache(None), device="cpu")
    cls_engine = Engine(Cache(None), device="cpu", pooling="cls")
    mean_engine._loaded = minilm
    cls_engine._loaded = minilm
    assert mean_engine.row_keys([text]) != cls_engine.row_keys([text])
    cls_vector = cls_engine.embeddings([text]).vectors[0]
    encoded = minilm.tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        hidden = minilm.embedding_model()(**encoded).last_hidden_state[0, 0]
    expected = torch.nn.functional.normalize(hidden, dim=0).numpy()  # MiniLM's folder normalises
    np.testing.assert_allclose(cls_vector, expected, atol=1e-5)
    assert not np.allclose(cls_vector, mean_engine.embeddings([text]).vectors[0], atol=1e-3)
