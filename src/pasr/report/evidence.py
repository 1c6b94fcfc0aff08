"""Arm-against-arm evidence: does PASR beat its controls on held-out problems, by how much, and is it noise?

An *arm* is one eval method of one kind of model, evaluated once per training seed (one ``pasr eval`` RUN_DIR
per seed). Per-problem scores are averaged over an arm's seeds, and two arms are compared by a paired
bootstrap over problems (the same resample of problems for both), so problem difficulty cancels out. The
targets of the CPU evidence experiment are checked as written; a difference whose 95% interval contains 0
is reported as no difference, never as a win.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasr.errors import PasrError
from pasr.eval.metrics import paired_bootstrap_ci
from pasr.report.loading import Results, load_run


@dataclass
class Arm:
    """What to compare: ``method`` results of ``benchmark`` in each RUN_DIR of ``runs`` (one per seed)."""

    name: str
    label: str
    method: str
    runs: list[Path]
    benchmark: str = "synthetic"


@dataclass
class ArmResult:
    arm: Arm
    per_seed: list[dict[str, Any]]
    scores: dict[str, float]
    """Problem id -> score averaged over seeds."""
    tokens: dict[str, float]
    results: list[Results] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(self.scores.values()) / len(self.scores)

    @property
    def mean_tokens(self) -> float:
        return sum(self.tokens.values()) / len(self.tokens)

    @property
    def refine_rate(self) -> float:
        return _mean([s["refine_rate"] for s in self.per_seed])


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


GENERATION_DEFAULTS = {"dtype": "auto", "max_tokens": None, "temperature": None}
"""run.json settings every compared RUN_DIR must share (a folder from before ``dtype`` was recorded used auto)."""


def require_same_generation(arms: dict[str, ArmResult]) -> None:
    """Refuse to compare arms generated differently: bf16 and autocast evaluations of one model differ by up to
    1.4 points here, as much as the effects being measured."""
    first = None
    for result in arms.values():
        for seed in result.per_seed:
            if first is None:
                first = seed
            elif seed["generation"] != first["generation"]:
                changed = sorted(k for k in GENERATION_DEFAULTS if seed["generation"][k] != first["generation"][k])
                detail = ", ".join(f"{k} {seed['generation'][k]!r} vs {first['generation'][k]!r}" for k in changed)
                raise PasrError(f"{seed['run']}/run.json and {first['run']}/run.json were evaluated with different "
                                f"settings ({detail}); re-evaluate so every arm shares them")


def load_arm(arm: Arm) -> ArmResult:
    """Load every seed's results; all seeds must cover the same problems."""
    if not arm.runs:
        raise PasrError(f"arm {arm.name}: no RUN_DIRs")
    per_seed, results = [], []
    ids: set[str] | None = None
    for run_dir in arm.runs:
        run = load_run(run_dir)
        found = run.get(arm.benchmark, arm.method)
        if found is None:
            raise PasrError(f"arm {arm.name}: {run_dir} has no {arm.benchmark}/{arm.method}.jsonl")
        these = {str(e["id"]) for e in found.examples}
        if ids is not None and these != ids:
            raise PasrError(
                f"arm {arm.name}: {found.path} covers {len(these)} problems, the first seed {len(ids)}; "
                "every seed must be evaluated on the same problems"
            )
        ids = these
        examples = found.examples
        per_seed.append({
            "run": str(run_dir),
            "n": len(examples),
            "accuracy": _mean([e["score"] for e in examples]),
            "tokens": _mean([e["tokens"] for e in examples]),
            "refine_rate": _mean([1.0 if e.get("refined") else 0.0 for e in examples]),
            "format_valid": _mean([1.0 if e.get("format_valid") else 0.0 for e in examples]),
            "generation": {key: run.info.get(key, default) for key, default in GENERATION_DEFAULTS.items()},
        })
        results.append(found)
    seeds = [_by_id(r) for r in results]
    scores = {i: _mean([seed[i]["score"] for seed in seeds]) for i in sorted(ids)}
    tokens = {i: _mean([seed[i]["tokens"] for seed in seeds]) for i in sorted(ids)}
    return ArmResult(arm=arm, per_seed=per_seed, scores=scores, tokens=tokens, results=results)


def _by_id(results: Results) -> dict[str, dict]:
    return {str(e["id"]): e for e in results.examples}


def compare(a: ArmResult, b: ArmResult, *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """``a`` minus ``b`` on the problems both cover: accuracy points with a paired bootstrap 95% CI, token ratio."""
    common = sorted(set(a.scores) & set(b.scores))
    if not common:
        raise PasrError(f"arms {a.arm.name} and {b.arm.name} share no problem ids")
    diff = paired_bootstrap_ci([a.scores[i] for i in common], [b.scores[i] for i in common], n_boot=n_boot, seed=seed)
    tokens_a = _mean([a.tokens[i] for i in common])
    tokens_b = _mean([b.tokens[i] for i in common])
    return {
        "a": a.arm.name,
        "b": b.arm.name,
        "n": len(common),
        "delta_points": 100 * diff["delta"],
        "ci_points": [100 * diff["ci"][0], 100 * diff["ci"][1]],
        "significant": diff["ci"][0] > 0 or diff["ci"][1] < 0,
        "token_ratio": tokens_a / tokens_b if tokens_b else float("inf"),
    }


def _refining_pairs(refining: list[float], standard: list[float], *, n_boot: int, seed: int) -> dict[str, Any]:
    """Accuracy of refining responses against their paired standard accuracy, with a paired bootstrap CI."""
    out: dict[str, Any] = {"pairs": len(refining)}
    if refining:
        diff = paired_bootstrap_ci(refining, standard, n_boot=n_boot, seed=seed)
        out.update({
            "refining_accuracy": _mean(refining),
            "standard_accuracy": _mean(standard),
            "delta_points": 100 * diff["delta"],
            "ci_points": [100 * diff["ci"][0], 100 * diff["ci"][1]],
            "significant": diff["ci"][0] > 0 or diff["ci"][1] < 0,
        })
    return out


def refine_vs_standard(refining: ArmResult, standard: ArmResult, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Responses that refine against the same model's standard-prompt responses to the same problems.

    Seed by seed (the two arms' RUN_DIRs pair up in order), every refining response is paired with that
    seed's standard response to its problem; the pairs of all seeds are pooled.
    """
    if len(refining.results) != len(standard.results):
        raise PasrError(f"arms {refining.arm.name} and {standard.arm.name} have different numbers of seeds")
    mine, theirs = [], []
    for refined_results, standard_results in zip(refining.results, standard.results):
        by_id = _by_id(standard_results)
        for example in refined_results.examples:
            if example.get("refined") and str(example["id"]) in by_id:
                mine.append(example["score"])
                theirs.append(by_id[str(example["id"])]["score"])
    return _refining_pairs(mine, theirs, n_boot=n_boot, seed=seed)


def training_refine_vs_baseline(rollout_logs: list[Path], *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """From training rollout logs: each refining completion's accuracy against its question's baseline mean.

    The baseline is what PASR's reward compares with: n standard-prompt samples of the current policy for the
    same question. Each training question is drawn once per run, so the policy had not been trained on it yet.
    """
    refined, baseline = [], []
    for row in _rollout_rows(rollout_logs):
        if (row.get("trace") or {}).get("refined") and row.get("baseline"):
            refined.append(float(row["accuracy"]))
            baseline.append(_mean([float(x) for x in row["baseline"]]))
    return _refining_pairs(refined, baseline, n_boot=n_boot, seed=seed)


def _rollout_rows(rollout_logs: list[Path]):
    """Rows of training rollout logs, skipping the truncated last line a run killed mid-write leaves."""
    for path in rollout_logs:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def refine_claims(rollout_logs: list[Path]) -> dict[str, int]:
    """How many refines in training rollout logs state a calculation, and how many of those are right
    (:func:`pasr.data.synthetic.refine_claim_is_right`; arithmetic tasks)."""
    from pasr.data.synthetic import refine_claim_is_right

    counts = {"refines": 0, "checkable": 0, "right": 0}
    for row in _rollout_rows(rollout_logs):
        for refine in (row.get("trace") or {}).get("refines") or []:
            verdict = refine_claim_is_right(refine["text"])  # traces store refines as dicts (pasr.format)
            counts["refines"] += 1
            counts["checkable"] += verdict is not None
            counts["right"] += bool(verdict)
    return counts


def refines_by_phase(rollout_logs: list[Path], *, phases: int = 3) -> list[dict[str, int]]:
    """Completions and refining completions in each equal part of training (by logged step): shows whether a
    reward prunes refines early or late, which end-of-run numbers cannot."""
    rows = [row for row in _rollout_rows(rollout_logs) if row.get("step") is not None]
    if not rows:
        return []
    last = max(row["step"] for row in rows)
    counts = [{"completions": 0, "refining": 0} for _ in range(phases)]
    for row in rows:
        part = counts[min(phases - 1, (row["step"] - 1) * phases // last)]
        part["completions"] += 1
        part["refining"] += bool((row.get("trace") or {}).get("refines"))
    return counts


def training_markdown(training: dict[str, Any]) -> str:
    if not training["pairs"]:
        return "No completion refined during PASR training (or no baseline was logged)."
    return (f"{training['pairs']} refining completions: accuracy {training['refining_accuracy']:.1%} against "
            f"{training['standard_accuracy']:.1%} for the standard baseline samples of the same questions "
            f"({training['delta_points']:+.1f} points, 95% CI {training['ci_points'][0]:+.1f} to "
            f"{training['ci_points'][1]:+.1f}).")


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    passed: bool


def check_targets(arms: dict[str, ArmResult], *, min_gain: float = 5.0, max_token_ratio: float = 1.2,
                  min_refine_rate: float = 0.05, max_self_refine_token_ratio: float = 0.6,
                  standard: str = "pasr-standard", training: dict[str, Any] | None = None,
                  ) -> tuple[list[Target], dict[str, Any]]:
    """The experiment's targets, each with the measured value; also returns the comparisons behind them.

    ``standard`` names the arm of the PASR models' standard-prompt answers (held-out refine check, if present);
    ``training`` is :func:`training_refine_vs_baseline` of the PASR runs (the same check on training rollouts).
    """
    need = ("pasr", "warmup", "control")
    missing = [name for name in need if name not in arms]
    if missing:
        raise PasrError(f"evidence needs arms {', '.join(need)}; missing {', '.join(missing)}")
    require_same_generation(arms)
    pasr = arms["pasr"]
    comparisons = {f"pasr-vs-{name}": compare(pasr, arms[name]) for name in arms if name not in ("pasr", standard)}
    targets = []
    for name, label in (("warmup", "warm-up only"), ("control", "plain-GRPO control")):
        c = comparisons[f"pasr-vs-{name}"]
        targets.append(Target(
            f"PASR beats {label}",
            f">= +{min_gain:g} points, CI above 0, <= {max_token_ratio:g}x tokens",
            f"{c['delta_points']:+.1f} points (95% CI {c['ci_points'][0]:+.1f} to {c['ci_points'][1]:+.1f}), "
            f"{c['token_ratio']:.2f}x tokens",
            c["delta_points"] >= min_gain and c["ci_points"][0] > 0 and c["token_ratio"] <= max_token_ratio,
        ))
    rates = ", ".join(f"{s['refine_rate']:.1%}" for s in pasr.per_seed)
    targets.append(Target("refinement does not collapse", f"refine rate > {min_refine_rate:.0%}",
                          f"{pasr.refine_rate:.1%} (seeds: {rates})", pasr.refine_rate > min_refine_rate))
    refines = []
    if standard in arms:
        refines.append(("held-out, vs the same model's standard-prompt answer",
                        refine_vs_standard(pasr, arms[standard])))
    if training is not None:
        refines.append(("training rollouts, vs the baseline samples", training))
    for where, rvs in refines:
        comparisons[f"refining-vs-standard ({where})"] = rvs
        if rvs["pairs"]:
            measured = (f"{rvs['refining_accuracy']:.1%} vs {rvs['standard_accuracy']:.1%} over {rvs['pairs']} "
                        f"refining responses ({rvs['delta_points']:+.1f} points, 95% CI "
                        f"{rvs['ci_points'][0]:+.1f} to {rvs['ci_points'][1]:+.1f})")
        else:
            measured = "no response refined"
        targets.append(Target(f"refining responses are right more often ({where})", "higher accuracy, CI above 0",
                              measured, bool(rvs["pairs"]) and rvs["ci_points"][0] > 0))
    if "self-refine" in arms:
        c = comparisons["pasr-vs-self-refine"]
        targets.append(Target(
            "PASR matches or beats self-refine", f"CI upper bound >= 0, <= {max_self_refine_token_ratio:g}x tokens",
            f"{c['delta_points']:+.1f} points (95% CI {c['ci_points'][0]:+.1f} to {c['ci_points'][1]:+.1f}), "
            f"{c['token_ratio']:.2f}x tokens",
            c["ci_points"][1] >= 0 and c["token_ratio"] <= max_self_refine_token_ratio,
        ))
    return targets, comparisons


def arms_markdown(arms: dict[str, ArmResult]) -> str:
    lines = ["| Arm | Method | Seeds | Accuracy % (mean of seeds) | per seed | Tokens | Refine rate | Format valid |",
             "|---|---|---:|---:|---|---:|---:|---:|"]
    for result in arms.values():
        seeds = ", ".join(f"{100 * s['accuracy']:.1f}" for s in result.per_seed)
        valid = _mean([s["format_valid"] for s in result.per_seed])
        lines.append(f"| {result.arm.label} | {result.arm.method} | {len(result.per_seed)} | "
                     f"{100 * result.accuracy:.1f} | {seeds} | {result.mean_tokens:.0f} | "
                     f"{result.refine_rate:.1%} | {valid:.0%} |")
    return "\n".join(lines)


def comparisons_markdown(comparisons: dict[str, Any], arms: dict[str, ArmResult]) -> str:
    lines = ["| PASR minus | Problems | Accuracy points | 95% CI (paired bootstrap) | Reading | PASR tokens / theirs |",
             "|---|---:|---:|---|---|---:|"]
    for key, c in comparisons.items():
        if not key.startswith("pasr-vs-"):
            continue
        reading = ("PASR better" if c["ci_points"][0] > 0 else "PASR worse") if c["significant"] else "no difference"
        lines.append(f"| {arms[c['b']].arm.label} | {c['n']} | {c['delta_points']:+.1f} | "
                     f"{c['ci_points'][0]:+.1f} to {c['ci_points'][1]:+.1f} | {reading} | {c['token_ratio']:.2f} |")
    return "\n".join(lines)


def targets_markdown(targets: list[Target]) -> str:
    lines = ["| Target | Wanted | Measured | Met |", "|---|---|---|---|"]
    lines += [f"| {t.name} | {t.wanted} | {t.measured} | {'yes' if t.passed else '**no**'} |" for t in targets]
    return "\n".join(lines)


def arms_plot(arms: dict[str, ArmResult], path: Path, *, n_boot: int = 2000, seed: int = 0) -> Path:
    """Accuracy per arm (seed mean, 95% bootstrap CI over problems, one dot per seed) beside its mean tokens."""
    from pasr.eval.metrics import bootstrap_ci
    from pasr.report.plots import _figure, _save

    names = list(arms)[::-1]
    fig = _figure(9.5, 0.45 * len(names) + 1.2)
    acc_ax, tok_ax = fig.subplots(1, 2, sharey=True, width_ratios=(3, 1))
    for y, name in enumerate(names):
        result = arms[name]
        low, high = bootstrap_ci(list(result.scores.values()), n_boot=n_boot, seed=seed)
        colour = "#d62728" if name == "pasr" else "#1f77b4" if name == "control" else "#7f7f7f"
        acc_ax.errorbar(100 * result.accuracy, y, xerr=[[100 * (result.accuracy - low)], [100 * (high - result.accuracy)]],
                        fmt="o", color=colour, capsize=3)
        acc_ax.scatter([100 * s["accuracy"] for s in result.per_seed], [y] * len(result.per_seed), s=12,
                       color=colour, alpha=0.45, zorder=3)
        tok_ax.barh(y, result.mean_tokens, color=colour, alpha=0.7)
    acc_ax.set_yticks(range(len(names)), [arms[n].arm.label for n in names], fontsize=8)
    acc_ax.set_xlabel("held-out accuracy % (mean of seeds, 95% CI; dots: seeds)")
    tok_ax.set_xlabel("mean generated tokens")
    acc_ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


__all__ = ["Arm", "ArmResult", "Target", "arms_markdown", "arms_plot", "check_targets", "compare", "comparisons_markdown",
           "load_arm", "refine_vs_standard", "targets_markdown", "training_markdown", "training_refine_vs_baseline"]
