"""Every use of TRL's private API in pasr, in one place, declared in :data:`TRL_PRIVATE_API`.

pasr pins ``trl==1.16.0`` and builds on parts of it that are not public: underscore methods and attributes
of its trainers, its internal modules (``trl.generation``, ``trl.scripts``, ``trl.trainer.grpo_trainer``), the
keyword arguments it hands reward functions, and code pasr mirrors. They are used here and nowhere else:
the rest of pasr calls the pasr-named functions and classes below. ``tests/test_trl_adapter.py`` checks that
every entry of :data:`TRL_PRIVATE_API` exists in the installed TRL with the declared parameters and source,
and scans ``src/pasr`` so that no other module reaches into TRL's private API. Upgrading TRL: run that test
first; each failure names what moved.

This module imports TRL only inside its functions (``pasr --help`` and the field checks stay fast).

What uses what:

- GRPO rollouts (:mod:`pasr.train.grpo`): :class:`GRPOHooks`, a mixin that times policy generation and
  scoring and runs generation under CPU bf16 autocast, and :func:`log_metric` for the trainer's metrics;
- the standard-sample baseline (:mod:`pasr.train.baseline`): :func:`tokenize_prompts`,
  :func:`generate_single_turn` (the trainer's own generation path: transformers, vLLM colocate or server);
- reward functions (:mod:`pasr.train.reward_functions`): :func:`reward_metric_logger`, :func:`reward_step`;
- vLLM rollouts on vLLM's CPU build (:mod:`pasr.train.vllm_sync`): :func:`hooked_vllm_generation`,
  :func:`swap_vllm_generation`, :func:`vllm_client`;
- ``pasr vllm-serve`` (:mod:`pasr.vllm_serve`): :func:`vllm_serve_command_line`;
- slip masking (:mod:`pasr.train.masking`): :func:`common_prefix_length`, a copy of TRL's, with SFTTrainer's
  tokenisation that masking mirrors declared below.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

TRL_VERSION = "1.16.0"
"""The TRL release every entry of :data:`TRL_PRIVATE_API` was checked against."""


@dataclass(frozen=True)
class PrivateUse:
    """One thing of TRL's that pasr relies on although TRL does not promise it.

    ``target``: dotted path from the ``trl`` package to a module, class, function, method or attribute
    (``trl.trainer.grpo_trainer.GRPOTrainer._generate``). ``params``: the leading parameter names its
    signature must have (None: not a callable, or not checked). ``source``: text that must appear in the
    source of ``source_of`` (default: ``target`` itself), for behaviour pasr depends on. ``why``: what pasr does
    with it.
    """

    target: str
    params: tuple[str, ...] | None = None
    source: tuple[str, ...] = ()
    source_of: str | None = None
    why: str = ""


_GRPO = "trl.trainer.grpo_trainer.GRPOTrainer"
_VLLM_GEN = "trl.generation.vllm_generation.VLLMGeneration"
_CLIENT = "trl.generation.vllm_client.VLLMClient"

TRL_PRIVATE_API: list[PrivateUse] = [
    # GRPO trainer hooks (GRPOHooks) and the standard-sample baseline
    PrivateUse(f"{_GRPO}._generate_single_turn",
               ("self", "prompt_ids", "images", "multimodal_fields", "num_generations"),
               why="overridden for CPU bf16 autocast; called for the standard samples of the baseline"),
    PrivateUse(f"{_GRPO}._tokenize_prompts", ("self", "prompts"), why="tokenizes the baseline's standard prompts"),
    PrivateUse(f"{_GRPO}._generate", ("self", "prompts"), why="overridden to time policy generation"),
    PrivateUse(f"{_GRPO}._generate_and_score_completions", ("self", "inputs"),
               why="overridden to time generation + scoring, so the update's time is the rest"),
    PrivateUse(f"{_GRPO}._metrics", source=('self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}',),
               source_of=f"{_GRPO}.__init__", why="log_metric appends pasr's timings to the trainer's metrics"),
    PrivateUse(f"{_GRPO}._calculate_rewards",
               source=('reward_kwargs["trainer_state"]', 'reward_kwargs["log_metric"]'),
               why="reward functions read the step and log batch metrics through these keyword arguments"),
    PrivateUse(_VLLM_GEN + ".generate", ("self", "prompts", "images", "num_generations"), source=("all_prompts[::num_generations]",),
               why="the baseline lays out m * G identical prompts per question; server mode generates once per run"),
    # vLLM rollouts on vLLM's CPU build (pasr.train.vllm_sync)
    PrivateUse("trl.trainer.grpo_trainer.VLLMGeneration",
               source=("VLLMGeneration(", "self.vllm_generation"), source_of=f"{_GRPO}.__init__",
               why="swap_vllm_generation replaces the class the trainer builds by this module-level name"),
    PrivateUse(_VLLM_GEN + "._init_vllm", ("self",), why="hooked: server mode without the NCCL communicator"),
    PrivateUse(_VLLM_GEN + ".sync_weights", ("self",), why="hooked: the weight sync that works on vLLM's CPU build"),
    PrivateUse(_VLLM_GEN + "._iter_named_params", ("self",), why="the policy's weights, gathered, by name"),
    PrivateUse(_VLLM_GEN + ".__init__",
               ("self", "model", "accelerator", "processing_class", "mode"),
               source=("self.mode = mode", "self.server_base_url", "self.server_host", "self.server_port",
                       "self.group_port", "self.server_timeout", "self.accelerator = accelerator"),
               why="the hooks read these attributes"),
    PrivateUse(_VLLM_GEN + "._init_vllm", source=("self.llm = LLM(", "self.vllm_client = VLLMClient("),
               why="colocate: self.llm; server: self.vllm_client"),
    PrivateUse(_CLIENT + ".__init__", ("self", "base_url"), source=("group_port", "connection_timeout", "self.base_url"),
               why="vllm_client builds the server client without its communicator"),
    PrivateUse(_CLIENT + ".reset_prefix_cache", ("self",), why="after a server-mode weight reload"),
    # pasr vllm-serve
    PrivateUse("trl.scripts.vllm_serve.build_command", ("script_args", "extra_args"),
               why="`pasr vllm-serve` starts TRL's server command line"),
    PrivateUse("trl.scripts.vllm_serve.ScriptArguments.__init__",
               ("self", "model"), source=("host", "port", "dtype", "max_model_len", "enforce_eager"),
               source_of="trl.scripts.vllm_serve.ScriptArguments",
               why="vllm_serve_command_line fills these fields"),
    # slip masking mirrors SFTTrainer's tokenisation of conversational prompt-completion examples
    PrivateUse("trl.data_utils.common_prefix_length", ("ids", "other_ids"),
               why="common_prefix_length is a copy (masking finds the completion's start as TRL does)"),
    PrivateUse("trl.trainer.sft_trainer.SFTTrainer._prepare_dataset",
               source=('"chat_template": chat_template', '"tools": tools',
                       '**example.get("chat_template_kwargs", {})', "add_generation_prompt=True",
                       'example["prompt"] + example["completion"]',
                       "prompt_len = common_prefix_length(prompt_ids, prompt_completion_ids)"),
               why="pasr.train.masking tokenizes with the same apply_chat_template calls (tokenize_fn)"),
]
"""Everything of TRL's private API that pasr touches; ``tests/test_trl_adapter.py`` checks each entry."""


# --- GRPO trainer ---------------------------------------------------------------------------------------------


def log_metric(trainer: Any, name: str, value: float, mode: str | None = None) -> None:
    """Append ``value`` to the trainer's metric ``name`` (averaged and logged by TRL at the next log step).

    ``mode``: ``"train"`` or ``"eval"``; default: ``"train"`` while the model is in training mode.
    """
    mode = mode or ("train" if trainer.model.training else "eval")
    trainer._metrics[mode][name].append(value)


class GRPOHooks:
    """Mixin for a ``GRPOTrainer`` subclass (``class T(GRPOHooks, GRPOTrainer)``): times and autocast.

    - generation runs under ``torch.autocast("cpu", bfloat16)`` when ``generation_autocast`` is set;
    - ``time/policy_generation`` (seconds of policy generation) is logged per generation;
    - ``prepare_seconds`` adds up the seconds spent generating and scoring completions (reset it before a
      training step; the update's time is the step's time less this).
    """

    generation_autocast: bool = False
    prepare_seconds: float = 0.0

    def _generate_single_turn(self, *args, **kwargs):
        import torch

        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.generation_autocast else contextlib.nullcontext()
        with ctx:
            return super()._generate_single_turn(*args, **kwargs)

    def _generate(self, prompts):
        start = time.perf_counter()
        out = super()._generate(prompts)
        log_metric(self, "time/policy_generation", time.perf_counter() - start)
        return out

    def _generate_and_score_completions(self, inputs):
        start = time.perf_counter()
        out = super()._generate_and_score_completions(inputs)
        self.prepare_seconds += time.perf_counter() - start
        return out


def tokenize_prompts(trainer: Any, prompts: list) -> tuple[Any, Any, Any]:
    """``(prompt_ids, images, multimodal_fields)`` of chat prompts, as the GRPO trainer tokenizes its own."""
    return trainer._tokenize_prompts(prompts)


def generate_single_turn(trainer: Any, prompt_ids: Any, images: Any, multimodal_fields: Any,
                         num_generations: int) -> tuple[Any, Any]:
    """``(completion_ids, logprobs)`` through the trainer's generation path (transformers, vLLM colocate/server).

    ``num_generations``: runs of identical prompts in ``prompt_ids`` (vLLM server mode generates once per run).
    """
    return trainer._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations)


def reward_metric_logger(reward_kwargs: dict) -> Callable[[str, float], None] | None:
    """The ``log_metric(name, value)`` TRL hands reward functions, or None outside a trainer."""
    return reward_kwargs.get("log_metric")


def reward_step(reward_kwargs: dict) -> int | None:
    """The optimizer step a reward call's completions are trained in (TRL's ``global_step + 1``), or None."""
    state = reward_kwargs.get("trainer_state")
    return (state.global_step + 1) if state is not None else None


# --- vLLM rollouts ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def swap_vllm_generation(cls: type) -> Iterator[None]:
    """While active, a GRPO trainer built now builds ``cls`` instead of TRL's ``VLLMGeneration``."""
    import trl.trainer.grpo_trainer as grpo_module

    original = grpo_module.VLLMGeneration
    grpo_module.VLLMGeneration = cls
    try:
        yield
    finally:
        grpo_module.VLLMGeneration = original


def trl_vllm_generation() -> type:
    """TRL's ``VLLMGeneration`` class, as the GRPO trainer builds it (imports vllm)."""
    import trl.trainer.grpo_trainer as grpo_module

    return grpo_module.VLLMGeneration


_HOOKED: type | None = None


def hooked_vllm_generation() -> type:
    """A subclass of TRL's ``VLLMGeneration`` that hands its two private steps to pasr-named methods.

    A subclass implements:

    - ``pasr_prepare()``: before the engine starts;
    - ``pasr_server_client()`` -> client (server mode, main process): replaces TRL's client set-up, which
      also opens the NCCL communicator; colocate mode runs TRL's own start-up;
    - ``pasr_sync_weights(named_params)``: replaces ``sync_weights``; ``named_params()`` yields the policy's
      ``(name, tensor)`` (gathered: every process must iterate it).
    """
    global _HOOKED
    if _HOOKED is None:
        from trl.generation.vllm_generation import VLLMGeneration

        class HookedVLLMGeneration(VLLMGeneration):
            def pasr_prepare(self) -> None:
                pass

            def pasr_server_client(self) -> Any:
                raise NotImplementedError

            def pasr_sync_weights(self, named_params: Callable[[], Iterator]) -> None:
                raise NotImplementedError

            def _init_vllm(self) -> None:
                self.pasr_prepare()
                if self.mode != "server":
                    super()._init_vllm()
                    return
                if self.accelerator.is_main_process:
                    self.vllm_client = self.pasr_server_client()
                self.accelerator.wait_for_everyone()

            def sync_weights(self) -> None:
                self.pasr_sync_weights(self._iter_named_params)

        _HOOKED = HookedVLLMGeneration
    return _HOOKED


def vllm_client(base_url: str, *, group_port: int, connection_timeout: float) -> Any:
    """TRL's ``VLLMClient`` for a server (checks it answers); no weight-transfer communicator is opened."""
    from trl.generation.vllm_client import VLLMClient

    return VLLMClient(base_url=base_url, group_port=group_port, connection_timeout=connection_timeout)


def vllm_serve_command_line(model: str, *, host: str, port: int, dtype: str, max_model_len: int | None,
                            enforce_eager: bool | None, extra_args: list[str]) -> list[str]:
    """TRL 1.16's ``trl vllm-serve`` command line (``[python, -m, vllm.entrypoints.cli.main, serve, MODEL, ...]``)."""
    from trl.scripts.vllm_serve import ScriptArguments, build_command

    args = ScriptArguments(model=model, host=host, port=port, dtype=dtype, max_model_len=max_model_len,
                           enforce_eager=enforce_eager)
    return build_command(args, extra_args)


# --- SFT tokenisation ----------------------------------------------------------------------------------------


def common_prefix_length(ids: list[int], other: list[int]) -> int:
    """Leading tokens ``ids`` and ``other`` share (a copy of ``trl.data_utils.common_prefix_length``)."""
    length = 0
    for a, b in zip(ids, other):
        if a != b:
            break
        length += 1
    return length


__all__ = [
    "GRPOHooks", "PrivateUse", "TRL_PRIVATE_API", "TRL_VERSION", "common_prefix_length", "generate_single_turn",
    "hooked_vllm_generation", "log_metric", "reward_metric_logger", "reward_step", "swap_vllm_generation",
    "tokenize_prompts", "trl_vllm_generation", "vllm_client", "vllm_serve_command_line",
]
