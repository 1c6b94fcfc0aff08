"""What a training run shows while it runs: a header, one readable line per logged step, a line per phase end.

transformers' default ``ProgressCallback`` prints a bare ``0/32`` bar and, on every log, the raw
metrics dict (about 40 keys for GRPO). :class:`PhaseProgress` replaces it (and ``PrinterCallback``)
on pasr's trainers with what TRL / open-r1 users read at a glance::

    pasr train: smollm2-135m-instruct on synthetic (2000 questions) -> runs/pasr-cpu
      phase 1/2  warm-up SFT   256 worked solutions, 32 steps  -> runs/pasr-cpu/warmup/final
      phase 2/2  PASR GRPO     12 steps x 2 questions x G=4, refine reward comparison  -> runs/pasr-cpu/final
    [warm-up SFT 1/2]  step  8/32  loss 1.234  token acc 0.61  lr 1.9e-04   4.1 s/step  phase left 1:38
    [PASR GRPO 2/2]    step  3/12  reward 1.52  acc 0.38  refine 12%  valid 94%  length 87  41.0 s/step  left 6:09

The raw metrics still go to ``trainer_state.json`` and to ``report_to`` loggers. Only the main
process prints. Lines go to stdout through ``rich`` (no wrapping, so logs stay one line per step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

#: (log key, label, format) per shown metric; a key missing from a log is left out of its line.
GRPO_METRICS = (
    ("reward", "reward", "{:.2f}"),
    ("rewards/accuracy_reward/mean", "acc", "{:.2f}"),
    ("pasr/refine_rate", "refine", "{:.0%}"),
    ("pasr/format_valid_rate", "valid", "{:.0%}"),
    ("completions/mean_length", "length", "{:.0f}"),
)
SFT_METRICS = (
    ("loss", "loss", "{:.3f}"),
    ("mean_token_accuracy", "token acc", "{:.2f}"),
    ("learning_rate", "lr", "{:.1e}"),
)


@dataclass(frozen=True)
class Phase:
    """One phase of a run: ``index`` of ``total`` (from 1), a ``name`` and the metrics its lines show."""

    index: int
    total: int
    name: str
    metrics: tuple[tuple[str, str, str], ...] = GRPO_METRICS
    later: tuple[str, ...] = field(default=())  # names of the phases after this one

    @property
    def tag(self) -> str:
        return f"[{self.name} {self.index}/{self.total}]"


def clock(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss`` (seconds >= 0, rounded)."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def step_line(phase: Phase, step: int, max_steps: int, logs: dict[str, Any], seconds_per_step: float | None) -> str:
    """The line for one logged step: phase, step, the phase's metrics, step time and the phase's time left."""
    width = len(str(max_steps))
    parts = [phase.tag, f"step {step:>{width}}/{max_steps}"]
    for key, label, fmt in phase.metrics:
        value = logs.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {fmt.format(value)}")
    if seconds_per_step is not None:
        parts.append(f"{seconds_per_step:.1f} s/step")
        left = clock(seconds_per_step * max(0, max_steps - step))
        parts.append(f"left {left}" + (f" (then {', '.join(phase.later)})" if phase.later else ""))
    return "  ".join(parts)


class PhaseProgress(TrainerCallback):
    """Prints :func:`step_line` on each log and a closing line at the phase's end (main process only).

    Step time is the mean wall time of the steps this process ran (a resumed run does not count the
    steps it skipped).
    """

    def __init__(self, phase: Phase, print_fn=None):
        self.phase = phase
        self._print = print_fn or _print
        self._started: float | None = None
        self._first_step: int | None = None
        self._last_step_time: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()
        self._first_step = state.global_step
        if state.is_world_process_zero:
            resumed = f", resuming at step {state.global_step}" if state.global_step else ""
            self._print(f"{self.phase.tag} {state.max_steps} steps{resumed}")

    def on_step_end(self, args, state, control, **kwargs):
        self._last_step_time = time.perf_counter()

    def seconds_per_step(self, state) -> float | None:
        done = state.global_step - (self._first_step or 0)
        if self._started is None or self._last_step_time is None or done <= 0:
            return None
        return (self._last_step_time - self._started) / done

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "train_runtime" in logs:
            return
        self._print(step_line(self.phase, state.global_step, state.max_steps, logs, self.seconds_per_step(state)))

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self._started is not None:
            took = clock(time.perf_counter() - self._started)
            self._print(f"{self.phase.tag} done: {state.global_step} steps in {took}")


def use_phase_progress(trainer: Any, phase: Phase) -> PhaseProgress:
    """Swap the trainer's default progress printing for :class:`PhaseProgress`; returns the callback."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    callback = PhaseProgress(phase)
    trainer.add_callback(callback)
    return callback


def grpo_phase_name(refine_reward_mode: str) -> str:
    """``PASR GRPO`` (``refine_reward_mode`` as given), or ``plain GRPO`` for the ``none`` control."""
    return "plain GRPO" if refine_reward_mode == "none" else "PASR GRPO"


def train_header(config: Any, model_name: str, n_records: int, *, rollout_log: Any) -> list[str]:
    """The lines ``pasr train`` prints before any work: model, data, output folder, then each phase.

    ``config`` is a :class:`pasr.train.config.PasrGRPOConfig`; ``rollout_log`` the run's rollout log path.
    A finished warm-up (:func:`pasr.train.sft.warmup_done`) is named as reused.
    """
    from pathlib import Path

    from pasr.train.sft import warmup_done, warmup_final_dir

    out = Path(config.output_dir)
    grpo = grpo_phase_name(config.refine_reward_mode)
    total = 2 if config.warmup_examples > 0 else 1
    lines = [f"pasr train: {model_name} on {config.dataset} ({n_records} questions) -> {out}"]
    if total == 2:
        steps = -(-config.warmup_examples // max(1, config.warmup_batch_size))
        done = warmup_done(out)
        what = "already done, reused" if done else f"{config.warmup_examples} worked solutions, {steps} steps"
        lines.append(f"  phase 1/2  warm-up SFT  {what}  -> {warmup_final_dir(out)}")
    batch = config.per_device_train_batch_size * config.gradient_accumulation_steps
    questions = max(1, batch // max(1, config.num_generations or 1))
    mode = "no refine reward" if config.refine_reward_mode == "none" else f"refine reward {config.refine_reward_mode}"
    lines.append(
        f"  phase {total}/{total}  {grpo}  {config.max_steps} steps x {questions} questions x G={config.num_generations}"
        f", {mode}  -> {out / 'final'}"
    )
    lines.append(f"  rollout log {rollout_log}; one line per step below, a summary at the end")
    return lines


def print_lines(lines: list[str]) -> None:
    """Print ``lines`` on the main process only."""
    from pasr.run_folder import is_writing_process

    if is_writing_process():
        for line in lines:
            _print(line)


def _print(line: str) -> None:
    from rich.console import Console

    Console(soft_wrap=True, highlight=False).print(line, markup=False)


__all__ = ["GRPO_METRICS", "SFT_METRICS", "Phase", "PhaseProgress", "clock", "grpo_phase_name", "print_lines",
           "step_line", "train_header", "use_phase_progress"]
