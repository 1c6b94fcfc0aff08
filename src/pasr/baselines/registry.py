"""The trained baselines `pasr baseline NAME` runs: name -> module, config, CPU recipe, description, run function.

Adding a baseline is one module, one recipe and one line in :data:`BASELINES`:

- **module** ``pasr/baselines/<name>.py`` exposes

  - a config dataclass (default attribute name ``Config``) that extends :class:`pasr.train.config.PasrSFTConfig`
    (a fine-tuning baseline: its fine-tuning settings, ``output_dir``, ``seed``) and usually
    :class:`pasr.train.config.JudgeArguments` (the scorer, :func:`pasr.scoring.build_scorer`), or
    :class:`pasr.train.config.PasrGRPOConfig` (an RL baseline on TRL's GRPO trainer, judge fields included:
    ``score``); its own fields carry a ``<name>_`` prefix and a ``help``
    text, and ``__post_init__`` refuses bad values with a one-line :class:`pasr.errors.PasrError`;
  - a run function (default ``run``): ``run(config, model_config, *, console=None) -> result`` where
    ``model_config`` is TRL's ``ModelConfig`` and ``console`` a rich console for progress (None: its own on
    stderr). The result has ``model_dir`` (the trained model, ``OUTPUT_DIR/final``, loadable by ``pasr eval``),
    ``log_path`` (the run's log or data file), ``seconds`` (wall time) and ``rows`` (a list of dicts of
    display strings, printed as the summary table: the keys of the first row are the columns);

  generation, scoring and training come from the shared pieces: :mod:`pasr.generation.runtime` (one backend
  alive at a time, sharded generation), :func:`pasr.scoring.score_records`, :func:`pasr.train.sft.run_sft`,
  and :mod:`pasr.baselines.common` (questions, the run log, the run's console, progress bar and scorer); a config
  whose ``dataset`` names training questions (not SFT chat examples) says so with the class attribute
  ``training_questions: ClassVar[bool] = True``; any use of TRL's private API goes into
  :mod:`pasr.train.trl_adapter` (its contract test fails otherwise);
- **recipe** ``recipes/cpu-<name>.yaml``: the defaults on the built-in model and task, minutes on CPU;
- **entry** ``Baseline("<name>", "pasr.baselines.<name>", "one line", config="...", run="...")`` below. Then
  rebuild the field catalog (``python -m pasr.train.fields --write``) so ``--fields`` and the fast typo check
  know its fields.

Nothing here imports a baseline's module until it is used (``pasr baseline --list`` stays fast).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pasr.errors import PasrError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@dataclass(frozen=True)
class Baseline:
    """One registered baseline. ``config`` and ``run`` name attributes of ``module``; ``recipe`` is a packaged
    recipe file (default ``cpu-<name>.yaml``); ``title`` heads its summary table and field group (default: name)."""

    name: str
    module: str
    description: str
    config: str = "Config"
    run: str = "run"
    recipe: str | None = None
    title: str | None = None

    @property
    def recipe_path(self) -> Path:
        """The default recipe (the packaged CPU one)."""
        return RECIPES / (self.recipe or f"cpu-{self.name}.yaml")

    @property
    def heading(self) -> str:
        return self.title or self.name

    def config_class(self) -> type:
        """The config dataclass (imports the module, and TRL with it)."""
        return getattr(importlib.import_module(self.module), self.config)

    def run_function(self) -> Callable[..., Any]:
        """``run(config, model_config, *, console=None) -> result`` (see the module docstring)."""
        return getattr(importlib.import_module(self.module), self.run)


BASELINES: tuple[Baseline, ...] = (
    Baseline("star", "pasr.baselines.star", "STaR: K rounds of few-shot rationales (+ rationalisation with the "
             "answer as hint), each fine-tuning the base model", config="StarConfig", run="run_star", title="STaR"),
    Baseline("ift", "pasr.baselines.ift_run", "PASR(+IFT): fine-tune the base model on the good refining rollouts "
             "of a PASR run instead of RL", config="IftConfig", run="run_ift", title="PASR(+IFT)"),
    Baseline("ptr", "pasr.baselines.ptr", "PTR: fine-tune on the model's own weaker -> better answer pairs under a "
             "'think further' instruction; evaluated over refinement rounds", title="PTR"),
    Baseline("score", "pasr.baselines.score", "SCoRe: two-attempt RL, stage I (r2, strong attempt-1 KL) then stage II "
             "(r1 + r2 + alpha * (r2 - r1)); evaluated over two attempts", title="SCoRe"),
    Baseline("rise", "pasr.baselines.rise", "RISE: multi-turn 'incorrect, try again' rollouts, best-of-N improved "
             "turns, reward-weighted SFT; evaluated over rise_eval_turns turns with and without an oracle",
             title="RISE"),
)
"""Every baseline, in the order `pasr baseline --list` shows them."""


def names() -> list[str]:
    """The registered names, in order."""
    return [b.name for b in BASELINES]


def get(name: str) -> Baseline:
    """The baseline called ``name``; :class:`PasrError` naming the known ones otherwise."""
    for baseline in BASELINES:
        if baseline.name == name:
            return baseline
    raise PasrError(f"unknown baseline {name!r}; known baselines: {', '.join(names())} (`pasr baseline --list`)")


__all__ = ["BASELINES", "Baseline", "get", "names"]
