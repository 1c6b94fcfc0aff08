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
- SCoRe's first-attempt KL (:mod:`pasr.baselines.score`): :class:`LossHooks` (an extra loss term on TRL's GRPO
  loss, per-completion tensors carried with the batch), :func:`weighted_kl_loss`, :func:`loss_mask`;
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
               source=('"vllm.entrypoints.cli.main",\n        "serve",\n        script_args.model,',
                       '"--weight-transfer-config"'),
               why="`pasr vllm-serve` starts TRL's server command line; on vLLM's CPU build it rewrites "
                   "[python, -m, vllm.entrypoints.cli.main, serve, MODEL, ...] without the weight-transfer option"),
    # masked warm-up slips (pasr.train.masking): SFT takes pre-tokenised rows as they are
    PrivateUse("trl.trainer.sft_trainer.SFTTrainer._prepare_dataset",
               ("self", "dataset", "processing_class"),
               source=('is_processed = "input_ids" in column_names', "if not is_processed:",
                       'if self.completion_only_loss and "completion_mask" in column_names:'),
               why="rows with input_ids and completion_mask skip TRL's tokenisation, so the masked slips stay masked"),
    PrivateUse("trl.scripts.vllm_serve.ScriptArguments.__init__",
               ("self", "model"), source=("host", "port", "dtype", "max_model_len", "enforce_eager"),
               source_of="trl.scripts.vllm_serve.ScriptArguments",
               why="vllm_serve_command_line fills these fields"),
    # RISE's reward-weighted SFT (pasr.baselines.rise.weighted_sft_trainer): compute_loss is public, but the
    # weighting relies on how it builds the loss from the model's fused-head outputs
    PrivateUse("trl.trainer.sft_trainer.SFTTrainer.compute_loss", ("self", "model", "inputs"),
               source=("outputs = model(**inputs, fused_lm_head=True)", "per_token_loss = -outputs.log_probs",
                       "loss = per_token_loss.sum() / torch.as_tensor(num_tokens).clamp(min=1)"),
               why="RISE scales each row's outputs.log_probs by its weight, so the loss is sum_i w_i * sum_t nll_it / N"),
    # SCoRe's extra loss term (LossHooks, weighted_kl_loss): pasr.baselines.score
    PrivateUse(f"{_GRPO}._compute_loss", ("self", "model", "inputs"),
               source=("self._get_per_token_logps_and_entropies(",
                       'mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]',
                       "torch.exp(ref_per_token_logps - per_token_logps) - (ref_per_token_logps - per_token_logps) - 1",
                       "per_token_loss = per_token_loss + self.beta * per_token_kl",
                       'if self.loss_type in ["grpo", "sapo"]:',
                       "loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()",
                       'elif self.loss_type == "bnpo":',
                       "loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)",
                       'elif self.loss_type == "dr_grpo":',
                       "loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * self.max_completion_length)",
                       'elif self.loss_type in ["cispo", "dapo", "vespo"]:',
                       'normalizer = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes',
                       "normalizer = normalizer * self.current_gradient_accumulation_steps / self.args.steps_per_generation",
                       'elif self.loss_type == "luspo":',
                       "loss = (per_token_loss * mask).sum(-1).mean()",
                       "if self.args.use_bias_correction_kl:", "per_token_kl = per_token_kl * coef_1",
                       "old_per_token_logps = per_token_logps.detach() if old_per_token_logps is None else "
                       "old_per_token_logps",
                       "log_importance_weights = (log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)",
                       "coef_1 = torch.exp(log_importance_weights)"),
               why="LossHooks wraps it (policy log-probs captured, an extra term added); weighted_kl_loss mirrors its "
                   "KL estimator, loss mask and per-loss-type normalisation"),
    PrivateUse(f"{_GRPO}._get_per_token_logps_and_entropies", ("self", "model", "input_ids", "attention_mask",
                                                               "logits_to_keep"),
               why="LossHooks keeps the policy log-probs _compute_loss computes (one call per loss)"),
    PrivateUse(f"{_GRPO}._generate_and_score_completions",
               source=('output["ref_per_token_logps"] = ref_per_token_logps', 'output["tool_mask"] = tool_mask',
                       "inp[key] = values[i]"),
               why="LossHooks adds per-completion tensors to the generation batch (shuffled and split with it); "
                   "weighted_kl_loss reads the reference log-probs and tool mask from it; a rollout's extra fields "
                   "reach the reward functions"),
    PrivateUse(f"{_GRPO}._generate",
               source=("output = self.rollout_func(prompts, self)",
                       'required_keys = {"prompt_ids", "completion_ids", "logprobs"}',
                       'tool_mask = extra_fields.pop("env_mask", None)'),
               why="the SCoRe rollout (rollout_func, experimental in TRL) returns one completion per prompt given, "
                   "logprobs None on the transformers path, and an env_mask that becomes the loss's tool_mask"),
    PrivateUse("trl.trainer.utils.shuffle_sequence_dict", ("seq_dict",), source=("v[permutation]",),
               why="per-completion tensors LossHooks adds are permuted with the batch"),
    PrivateUse("trl.trainer.utils.split_tensor_dict", ("tensor_dict", "num_chunks"),
               source=("chunk_dict[key] = tensor[i * chunk_size : (i + 1) * chunk_size]",),
               why="... and split with it into the accumulation steps"),
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


class LossHooks:
    """Mixin for a ``GRPOTrainer`` subclass (``class T(LossHooks, ..., GRPOTrainer)``): an extra loss term.

    A subclass implements (both optional):

    - ``pasr_batch_tensors(batch) -> dict``: per-completion tensors (first dimension: the completions) added
      to each generation batch after TRL generated and scored it; TRL shuffles and splits them with the batch,
      so each training micro-batch's ``inputs`` carries its rows;
    - ``pasr_extra_loss(inputs, per_token_logps) -> tensor | None``: a term added to TRL's loss of a
      micro-batch; ``per_token_logps`` (completions x tokens) are the policy log-probs TRL computed for that
      loss (with their graph: the term is differentiated with it).
    """

    pasr_capture: bool = False
    pasr_policy_logps: Any = None

    def pasr_batch_tensors(self, batch: dict) -> dict:
        return {}

    def pasr_extra_loss(self, inputs: dict, per_token_logps: Any) -> Any:
        return None

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)
        batch.update(self.pasr_batch_tensors(batch))
        return batch

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        out = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if self.pasr_capture:
            self.pasr_policy_logps = out[0]
        return out

    def _compute_loss(self, model, inputs):
        self.pasr_capture, self.pasr_policy_logps = True, None
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            self.pasr_capture = False
        logps, self.pasr_policy_logps = self.pasr_policy_logps, None
        extra = self.pasr_extra_loss(inputs, logps)
        return loss if extra is None else loss + extra


def loss_mask(inputs: dict) -> Any:
    """The tokens TRL's GRPO loss counts (completions x tokens): completion mask times tool / env mask."""
    mask = inputs["completion_mask"]
    return mask if "tool_mask" not in inputs else mask * inputs["tool_mask"]


def reference_logps(inputs: dict) -> Any:
    """The reference model's per-token log-probs of a micro-batch (None when ``beta`` is 0: TRL computes none)."""
    return inputs.get("ref_per_token_logps")


def aggregate_like_loss(trainer: Any, per_token: Any, inputs: dict) -> Any:
    """``per_token`` (completions x tokens) summed into a scalar exactly as TRL 1.16's GRPO loss sums its per-token
    terms for ``trainer.loss_type`` over :func:`loss_mask` (grpo / sapo: per-completion token mean, then batch
    mean; bnpo: batch token mean; dr_grpo: sum / (completions * max_completion_length); dapo / cispo / vespo:
    sum / active tokens of the generation batch; luspo: per-completion sum, batch mean), with its division for
    gradient accumulation. A term ``w * x`` added per token to TRL's ``per_token_loss`` adds
    ``aggregate_like_loss(trainer, w * x, inputs)`` to its loss. ValueError for another loss type."""
    mask = loss_mask(inputs)
    train = trainer.model.training
    accumulation = trainer.current_gradient_accumulation_steps if train else 1.0
    loss_type = trainer.loss_type
    if loss_type in ("grpo", "sapo"):
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / accumulation
    if loss_type == "bnpo":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0) / accumulation
    if loss_type == "dr_grpo":
        return (per_token * mask).sum() / (per_token.size(0) * trainer.max_completion_length) / accumulation
    if loss_type in ("cispo", "dapo", "vespo"):
        normalizer = inputs["num_items_in_batch"].clamp(min=1.0) / trainer.accelerator.num_processes
        if train:
            normalizer = normalizer * trainer.current_gradient_accumulation_steps / trainer.args.steps_per_generation
        return (per_token * mask).sum() / normalizer
    if loss_type == "luspo":
        return (per_token * mask).sum(-1).mean() / accumulation
    raise ValueError(f"aggregate_like_loss: unknown loss_type {loss_type!r}")


def k3_kl(ref_logps: Any, logps: Any) -> Any:
    """TRL's per-token KL estimator (Schulman's k3): ``exp(ref - logp) - (ref - logp) - 1`` (>= 0, nats)."""
    import torch

    return torch.exp(ref_logps - logps) - (ref_logps - logps) - 1


def weighted_kl_loss(trainer: Any, inputs: dict, per_token_logps: Any, token_mask: Any,
                     weight: float) -> tuple[Any, Any]:
    """``(term, kl_mean)``: the KL to the reference model on the tokens of ``token_mask`` (completions x tokens,
    1 = counted) weighted by ``weight`` and summed as TRL sums its loss (:func:`aggregate_like_loss`), so that
    adding ``term`` to TRL's loss is the same as adding ``weight * KL`` to its per-token loss on those tokens;
    ``kl_mean`` is the plain token mean of that KL over ``token_mask`` x :func:`loss_mask` (detached; 0 without
    such tokens). With ``use_bias_correction_kl`` (TRL's default) the KL is multiplied by the importance ratio as
    TRL multiplies its own (token or sequence level; its value is 1 on-policy, its gradient is not that of 1).
    Needs ``beta != 0`` (TRL computes the reference log-probs only then): ValueError otherwise."""
    import torch

    ref = reference_logps(inputs)
    if ref is None:
        raise ValueError("weighted_kl_loss needs the reference log-probs: TRL computes them only when beta != 0")
    kl = k3_kl(ref, per_token_logps)
    mask = token_mask.to(kl.dtype)
    counted = mask * loss_mask(inputs).to(kl.dtype)
    kl_mean = (kl.detach() * counted).sum() / counted.sum().clamp(min=1.0)
    if trainer.args.use_bias_correction_kl:
        old = inputs.get("old_per_token_logps")
        log_ratio = per_token_logps - (per_token_logps.detach() if old is None else old)
        if trainer.importance_sampling_level == "sequence":
            full = loss_mask(inputs)
            log_ratio = ((log_ratio * full).sum(-1) / full.sum(-1).clamp(min=1.0)).unsqueeze(-1)
        kl = kl * torch.exp(log_ratio)
    return aggregate_like_loss(trainer, weight * kl * mask, inputs), kl_mean


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
    "GRPOHooks", "LossHooks", "PrivateUse", "aggregate_like_loss", "k3_kl", "loss_mask", "reference_logps",
    "weighted_kl_loss", "TRL_PRIVATE_API", "TRL_VERSION", "common_prefix_length", "generate_single_turn",
    "hooked_vllm_generation", "log_metric", "reward_metric_logger", "reward_step", "swap_vllm_generation",
    "tokenize_prompts", "trl_vllm_generation", "vllm_client", "vllm_serve_command_line",
]
