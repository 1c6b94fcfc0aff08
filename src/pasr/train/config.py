"""Training configs: TRL's dataclasses extended with PASR's fields.

Every field is a YAML key in a recipe and a ``--flag`` on the command line (TRL's
``TrlParser``), exactly as in TRL and open-r1. Model and LoRA options come from
TRL's own ``ModelConfig`` (``model_name_or_path``, ``use_peft``, ``lora_r``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from trl import GRPOConfig, ModelConfig, SFTConfig

from pasr.errors import PasrError
from pasr.rewards import REFINE_MODES

#: ``refine_reward_mode`` values: the paper's ablation modes plus ``none``, the plain-GRPO
#: control arm (format + accuracy rewards only, no baseline generation).
TRAIN_REFINE_MODES = (*REFINE_MODES, "none")


@dataclass
class DataArguments:
    """Where training questions come from; shared by GRPO and SFT configs."""

    dataset: str = field(
        default="synthetic",
        metadata={
            "help": "Training data: 'synthetic' (built-in task, train split), 'wizardlm' (WizardLM evol-instruct 70k, "
            "hub or --data_file), a benchmark name from `pasr data list`, or 'file' with --data_file."
        },
    )
    data_file: str | None = field(default=None, metadata={"help": "Local JSON/JSONL file of training records."})
    data_fields: str | None = field(
        default=None,
        metadata={"help": "Field mapping for --data_file, e.g. 'question=instruction,reference=output'."},
    )
    data_task: str | None = field(
        default=None, metadata={"help": "Answer family of --data_file records (math, gsm8k, choice, open, ...)."}
    )
    train_size: int | None = field(default=None, metadata={"help": "Use at most this many training records."})
    synthetic_difficulty: int | None = field(
        default=None, metadata={"help": "Difficulty of the built-in task (default: the task's default)."}
    )
    synthetic_family: str = field(
        default="arith",
        metadata={
            "help": "Family of the built-in task (dataset 'synthetic' and the warm-up): 'arith' (multi-step word "
            "problems; synthetic_difficulty applies) or 'sums' (sums of two numbers, 40% easy, 60% hard 4-digit "
            "ones, where a column check inside <refine> is more reliable than a direct answer)."
        },
    )
    data_seed_offset: int = field(default=0, metadata={"help": "Extra seed offset for sampling training records."})


@dataclass
class JudgeArguments:
    """An LLM judge over an OpenAI-compatible API (vllm serve, llama.cpp, hosted)."""

    judge_url: str | None = field(default=None, metadata={"help": "Base URL of the judge, e.g. http://localhost:8001/v1"})
    judge_model: str | None = field(default=None, metadata={"help": "Model name the judge server serves."})
    judge_api_key_env: str = field(default="PASR_JUDGE_API_KEY", metadata={"help": "Env var holding the API key."})
    judge_all: bool = field(
        default=False, metadata={"help": "Score every completion with the judge, not only open-ended tasks."}
    )
    judge_agreement: bool = field(
        default=False,
        metadata={
            "help": "Also ask the judge about completions the rules score, to log judge-vs-rule agreement "
            "(judge/agreement, judge/kappa); a metric, not a reward change. With judge_all it is logged anyway."
        },
    )
    judge_concurrency: int = field(default=8, metadata={"help": "Concurrent judge requests."})
    judge_max_tokens: int = field(
        default=16, metadata={"help": "Reply tokens per judge request (raise it for judges that reason first)."}
    )
    judge_timeout: float = field(default=60.0, metadata={"help": "Seconds per judge request."})
    judge_fallback_score: float = field(
        default=0.0, metadata={"help": "Accuracy used when the judge fails (failures are counted and logged)."}
    )
    judge_retries: int = field(default=3, metadata={"help": "Retries per judge request, with exponential backoff."})
    judge_cache_dir: str | None = field(
        default="~/.cache/pasr/judge", metadata={"help": "On-disk cache of judge replies (keyed by model + prompt)."}
    )


@dataclass
class PasrGRPOConfig(GRPOConfig, DataArguments, JudgeArguments):
    """GRPOConfig plus the PASR reward, baseline and warm-up settings.

    Defaults that differ from TRL follow the paper where it is explicit (beta 0.04, clip 0.2,
    temperature 0.9, G = baseline samples = 8).
    """

    training_questions: ClassVar[bool] = True
    """``dataset`` names training questions (:func:`pasr.train.checks.reads_training_questions`)."""

    system_prompt: str = field(default="pasr", metadata={"help": "'pasr', 'standard' or a literal system prompt."})
    refine_reward_mode: str = field(
        default="comparison",
        metadata={"help": f"One of {TRAIN_REFINE_MODES}; 'none' is the plain-GRPO control (no refine reward)."},
    )
    zeta: float = field(default=0.0, metadata={"help": "Margin around the baseline mean for the refine reward."})
    baseline_samples: int | None = field(
        default=None, metadata={"help": "Standard samples per question for the baseline (default: num_generations)."}
    )
    lazy_baseline: bool = field(
        default=True,
        metadata={"help": "Skip baseline generation on steps where no completion refines (reward is identical)."},
    )
    rollout_log: str | None = field(
        default=None, metadata={"help": "JSONL file, one line per completion (default: OUTPUT_DIR/rollouts.jsonl)."}
    )
    scoring_timeout: float = field(default=5.0, metadata={"help": "Seconds per math-verify check."})
    warmup_examples: int = field(
        default=0,
        metadata={"help": "Built-in-task worked solutions for a supervised warm-up before GRPO (0: start RL directly)."},
    )
    warmup_learning_rate: float = field(default=2e-4, metadata={"help": "Warm-up SFT learning rate."})
    warmup_batch_size: int = field(default=8, metadata={"help": "Warm-up SFT batch size."})
    warmup_refine_share: float = field(default=0.5, metadata={"help": "Share of warm-up solutions with a refine."})
    warmup_mask_slips: bool = field(
        default=False,
        metadata={
            "help": "Leave the planted slip a warm-up refine fixes out of the SFT loss "
            "(the erroneous-step masking of S^3c-Math / ISC)"
        },
    )
    cpu_bf16_generation: bool = field(
        default=True, metadata={"help": "On CPUs with bf16 support, generate under bf16 autocast (1.6x faster)."}
    )
    completion_prefix: str = field(
        default="",
        metadata={
            "help": "The text the chat template puts at the start of the assistant turn, e.g. '<think>\\n' for "
            "DeepSeek-R1 distills; completions are parsed as its continuation."
        },
    )

    # Paper-faithful defaults (TRL's own defaults differ).
    beta: float = field(default=0.04, metadata={"help": "KL coefficient to the reference model."})
    epsilon: float = field(default=0.2, metadata={"help": "Clip range of the policy ratio."})
    temperature: float = field(default=0.9, metadata={"help": "Sampling temperature of rollouts."})
    num_generations: int | None = field(default=8, metadata={"help": "Completions per question (GRPO group G)."})
    report_to: str | list[str] = field(default="none", metadata={"help": "trackio, wandb, tensorboard or none."})

    def __post_init__(self):
        check_fields(self)  # before TRL's own __post_init__, which divides by some of them
        super().__post_init__()
        if self.refine_reward_mode not in TRAIN_REFINE_MODES:
            raise PasrError(
                f"refine_reward_mode={self.refine_reward_mode!r} is not known; choose one of {', '.join(TRAIN_REFINE_MODES)}"
            )
        if self.zeta < 0:
            raise PasrError(f"zeta must be >= 0, got {self.zeta}")
        if self.baseline_samples is None:
            self.baseline_samples = self.num_generations
        if self.baseline_samples < 1:
            raise PasrError(f"baseline_samples must be >= 1, got {self.baseline_samples}")
        if bool(self.judge_url) != bool(self.judge_model):
            raise PasrError("judge_url and judge_model go together: set both or neither")


@dataclass
class PasrSFTConfig(SFTConfig, DataArguments):
    """SFTConfig plus where the examples come from.

    ``dataset='warmup'`` builds worked PASR-format solutions of the built-in task;
    ``dataset='file'`` reads chat examples (``prompt``/``completion`` or ``messages``) from ``data_file``.
    """

    dataset: str = field(default="warmup", metadata={"help": "'warmup' (built-in worked solutions) or 'file'."})
    warmup_examples: int = field(default=256, metadata={"help": "Number of built-in worked solutions."})
    warmup_refine_share: float = field(default=0.5, metadata={"help": "Share of worked solutions with a refine."})
    warmup_mask_slips: bool = field(
        default=False,
        metadata={
            "help": "Leave the planted slip a warm-up refine fixes out of the SFT loss "
            "(the erroneous-step masking of S^3c-Math / ISC)"
        },
    )
    report_to: str | list[str] = field(default="none", metadata={"help": "trackio, wandb, tensorboard or none."})

    def __post_init__(self):
        check_fields(self)  # before TRL's own __post_init__
        super().__post_init__()


def check_fields(config) -> None:
    """The value rules of :mod:`pasr.train.checks` on a config built in Python (the CLI checks before building);
    ``dataset`` names training questions when the config's class says so (``training_questions = True``)."""
    from dataclasses import fields

    from pasr.train.checks import check_values, reads_training_questions

    check_values({f.name: getattr(config, f.name) for f in fields(config) if f.init},
                 training_questions=reads_training_questions(config))


__all__ = ["DataArguments", "JudgeArguments", "ModelConfig", "PasrGRPOConfig", "PasrSFTConfig", "TRAIN_REFINE_MODES",
           "check_fields"]
