"""Arm-against-arm evidence: does PASR beat its controls on held-out problems, by how much, and is it noise?

An *arm* is one eval method of one kind of model, evaluated once per training seed (one ``pasr eval`` RUN_DIR
per seed). Per-problem scores are averaged over an arm's seeds, and two arms are compared by a paired
bootstrap over problems (the same resample of problems for both), so problem difficulty cancels out. The
targets of the CPU evidence experiment are checked as written; a difference whose 95% interval contains 0
is reported as no difference, never as a win.

Held-out records whose ``meta["difficulty"]`` is a label (the ``sums`` family: "easy" / "hard"; arith's numeric
levels are not) also get, per arm (:func:`difficulty_evidence`): the refine rate on each difficulty with a 95%
CI and the hard/easy ratio, the accuracy of refining and non-refining answers, the refining answers against the
warm-up's standard-prompt answers to the same problems (paired), and tokens; :func:`check_targets` then checks
the targets of issue 12 (PASR not worse than the control; refines at least twice as often on hard problems;
at most 0.8x the tokens of ``trigger`` at no lower accuracy).
"""

from __future__ import annotations

import json
import math
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


# --- difficulty: refines on easy and hard problems (records labelled by meta["difficulty"], e.g. sums) ---------

DIFFICULTY_ORDER = ("easy", "hard")


def read_difficulties(path: str | Path) -> dict[str, str]:
    """Problem id -> ``meta["difficulty"]`` of the held-out records in ``path`` where it is a label (``sums``:
    "easy" / "hard"); ``{}`` where none is (``arith`` records carry a numeric level, one for the whole set)."""
    from pasr.data.records import read_records

    labels = {}
    for record in read_records(path):
        label = (record.meta or {}).get("difficulty")
        if isinstance(label, str):
            labels[str(record.id)] = label
    return labels


def _labels(difficulties: dict[str, str]) -> list[str]:
    rank = {name: i for i, name in enumerate(DIFFICULTY_ORDER)}
    return sorted(set(difficulties.values()), key=lambda d: (rank.get(d, len(rank)), d))


def _answers(result: ArmResult, difficulties: dict[str, str]) -> list[tuple[str, dict]]:
    """(difficulty, answer) for every answer of every seed; a problem the records do not label is an error."""
    out = []
    for seed in result.results:
        for example in seed.examples:
            label = difficulties.get(str(example["id"]))
            if label is None:
                raise PasrError(f"arm {result.arm.name}: problem {example['id']} of {seed.path} has no difficulty in "
                                "the held-out records; evaluate on the records file the difficulties come from")
            out.append((label, example))
    return out


def _mean_or_none(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _accuracy(scores: list[float], *, n_boot: int, seed: int) -> dict[str, Any]:
    from pasr.eval.metrics import bootstrap_ci

    return {"n": len(scores), "accuracy": _mean_or_none(scores), "ci": bootstrap_ci(scores, n_boot=n_boot, seed=seed)}


def difficulty_breakdown(result: ArmResult, difficulties: dict[str, str], *, n_boot: int = 2000,
                         seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per difficulty (and ``"all"``): answers, accuracy, mean tokens, the refine rate with a 95% bootstrap CI over
    problems (a problem's refine rate is the share of its seeds' answers that refine), and the accuracy of the
    refining and of the non-refining answers (each with a 95% CI over answers)."""
    from pasr.eval.metrics import bootstrap_ci

    answers = _answers(result, difficulties)
    out = {}
    for label in [*_labels(difficulties), "all"]:
        these = [e for d, e in answers if label in ("all", d)]
        by_problem: dict[str, list[dict]] = {}
        for e in these:
            by_problem.setdefault(str(e["id"]), []).append(e)
        rates = [_mean([1.0 if e.get("refined") else 0.0 for e in es]) for es in by_problem.values()]
        out[label] = {
            "problems": len(by_problem),
            "answers": len(these),
            "accuracy": _mean_or_none([float(e["score"]) for e in these]),
            "tokens": _mean_or_none([float(e["tokens"]) for e in these]),
            "refine_rate": _mean_or_none(rates),
            "refine_ci": bootstrap_ci(rates, n_boot=n_boot, seed=seed),
            "refining": _accuracy([float(e["score"]) for e in these if e.get("refined")], n_boot=n_boot, seed=seed),
            "non_refining": _accuracy([float(e["score"]) for e in these if not e.get("refined")],
                                      n_boot=n_boot, seed=seed),
        }
    return out


def _problem_refine_rates(result: ArmResult, difficulties: dict[str, str], label: str) -> list[float]:
    by_problem: dict[str, list[float]] = {}
    for d, e in _answers(result, difficulties):
        if d == label:
            by_problem.setdefault(str(e["id"]), []).append(1.0 if e.get("refined") else 0.0)
    return [_mean(v) for v in by_problem.values()]


def hard_vs_easy(result: ArmResult, difficulties: dict[str, str], *, hard: str = "hard", easy: str = "easy",
                 n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Refine rate on ``hard`` problems over that on ``easy`` ones, and their difference, with 95% CIs from a
    bootstrap that resamples the easy and the hard problems separately. The ratio is None (unbounded) when no easy
    answer refines; a CI bound is None where resamples without an easy refine leave it unbounded."""
    import numpy as np

    high = np.asarray(_problem_refine_rates(result, difficulties, hard), dtype=float)
    low = np.asarray(_problem_refine_rates(result, difficulties, easy), dtype=float)
    if not len(high) or not len(low):
        return {"hard": None, "easy": None, "ratio": None, "ratio_ci": None, "difference_points": None,
                "difference_ci_points": None}
    rng = np.random.default_rng(seed)
    high_means = high[rng.integers(0, len(high), size=(n_boot, len(high)))].mean(axis=1)
    low_means = low[rng.integers(0, len(low), size=(n_boot, len(low)))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(low_means > 0, high_means / np.where(low_means > 0, low_means, 1.0), np.inf)
    ratios = np.where((low_means == 0) & (high_means == 0), np.nan, ratios)
    lo, hi = np.nanquantile(ratios, [0.025, 0.975], method="inverted_cdf") if not np.isnan(ratios).all() else (
        np.nan, np.nan)
    diff = 100 * (high_means - low_means)
    h, e = float(high.mean()), float(low.mean())

    def finite(x: float) -> float | None:
        return float(x) if math.isfinite(x) else None

    return {
        "hard": h,
        "easy": e,
        "ratio": h / e if e > 0 else None,
        "ratio_ci": [finite(lo), finite(hi)],
        "difference_points": 100 * (h - e),
        "difference_ci_points": [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))],
    }


def refining_vs_reference(result: ArmResult, reference: ArmResult, difficulties: dict[str, str], *,
                          n_boot: int = 2000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Each refining answer of ``result`` (every seed) paired with ``reference``'s answer to the same problem (its
    mean over seeds; the warm-up has one), per difficulty and ``"all"``: accuracies, the difference in points and
    its paired bootstrap 95% CI (:func:`_refining_pairs`: ``standard_accuracy`` is the reference's)."""
    pairs: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in [*_labels(difficulties), "all"]}
    for label, e in _answers(result, difficulties):
        if e.get("refined") and str(e["id"]) in reference.scores:
            for key in (label, "all"):
                pairs[key][0].append(float(e["score"]))
                pairs[key][1].append(reference.scores[str(e["id"])])
    return {key: _refining_pairs(mine, theirs, n_boot=n_boot, seed=seed) for key, (mine, theirs) in pairs.items()}


def refining_vs_not_same_problems(result: ArmResult, *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Problems where some of an arm's seeds refined and others did not: the refining answers' mean accuracy
    against the non-refining answers' on the same problem, paired over those problems (bootstrap 95% CI)."""
    by_problem: dict[str, list[dict]] = {}
    for seed_results in result.results:
        for e in seed_results.examples:
            by_problem.setdefault(str(e["id"]), []).append(e)
    mine, theirs = [], []
    for answers in by_problem.values():
        refining = [float(e["score"]) for e in answers if e.get("refined")]
        plain = [float(e["score"]) for e in answers if not e.get("refined")]
        if refining and plain:
            mine.append(_mean(refining))
            theirs.append(_mean(plain))
    out = _refining_pairs(mine, theirs, n_boot=n_boot, seed=seed)
    out["problems"] = out.pop("pairs")
    if "standard_accuracy" in out:
        out["non_refining_accuracy"] = out.pop("standard_accuracy")
    return out


def difficulty_evidence(arms: dict[str, ArmResult], difficulties: dict[str, str], *,
                        reference: str = "warmup-standard", n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Issue 12's measurements for every arm: refine rates, accuracy and tokens by difficulty
    (:func:`difficulty_breakdown`), hard against easy refine rate (:func:`hard_vs_easy`), refining answers of the
    PASR-prompt arms against the ``reference`` arm's answers to the same problems (:func:`refining_vs_reference`),
    refining against non-refining answers of one arm's seeds to the same problems
    (:func:`refining_vs_not_same_problems`), and PASR's tokens and accuracy against ``trigger``'s."""
    if not difficulties:
        raise PasrError("no held-out record carries a difficulty label")
    out: dict[str, Any] = {"labels": _labels(difficulties), "reference": reference if reference in arms else None,
                           "arms": {}, "refining_vs_reference": {}, "refining_vs_not": {}}
    for name, result in arms.items():
        out["arms"][name] = {
            "tokens": result.mean_tokens,
            "by_difficulty": difficulty_breakdown(result, difficulties, n_boot=n_boot, seed=seed),
            "hard_vs_easy": hard_vs_easy(result, difficulties, n_boot=n_boot, seed=seed),
        }
        if len(result.results) > 1:
            out["refining_vs_not"][name] = refining_vs_not_same_problems(result, n_boot=n_boot, seed=seed)
        if reference in arms and name != reference and result.arm.method == "pasr":
            out["refining_vs_reference"][name] = refining_vs_reference(result, arms[reference], difficulties,
                                                                       n_boot=n_boot, seed=seed)
    if "pasr" in arms and "trigger" in arms:
        out["pasr_vs_trigger"] = compare(arms["pasr"], arms["trigger"], n_boot=n_boot, seed=seed)
    return out


def _reference_words(detail: dict[str, Any], arms: dict[str, ArmResult]) -> str:
    if detail["reference"] == "warmup-standard":
        return "the warm-up's standard-prompt answers"
    return f"the answers of {arms[detail['reference']].arm.label}"


def _points(c: dict[str, Any]) -> str:
    return f"{c['delta_points']:+.1f} points (95% CI {c['ci_points'][0]:+.1f} to {c['ci_points'][1]:+.1f})"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _pct_ci(x: float | None, ci: list[float] | None) -> str:
    if x is None:
        return "–"
    return f"{x:.1%} ({ci[0]:.1%} to {ci[1]:.1%})" if ci else f"{x:.1%}"


def _ratio(r: dict[str, Any]) -> str:
    """The hard/easy refine-rate ratio with its CI, as text."""
    if r["hard"] is None:
        return "–"
    if r["ratio"] is None:
        return "unbounded (no easy answer refines)" if r["hard"] > 0 else "– (no answer refines)"
    lo, hi = r["ratio_ci"] or [None, None]
    bounds = f"{lo:.2f}" if lo is not None else "?"
    bounds += f" to {hi:.2f}" if hi is not None else " to unbounded"
    return f"{r['ratio']:.2f}x (95% CI {bounds})"


def _hard_easy_target(r: dict[str, Any], min_ratio: float) -> Target:
    wanted = f"hard refine rate >= {min_ratio:g}x the easy one"
    if r["hard"] is None:
        return Target("PASR refines more on hard problems", wanted, "no easy or no hard problems", False)
    measured = (f"hard {r['hard']:.1%} vs easy {r['easy']:.1%}: {_ratio(r)}; difference "
                f"{r['difference_points']:+.1f} points (95% CI {r['difference_ci_points'][0]:+.1f} to "
                f"{r['difference_ci_points'][1]:+.1f})")
    return Target("PASR refines more on hard problems", wanted, measured,
                  r["hard"] > 0 and r["hard"] >= min_ratio * r["easy"])


def difficulty_markdown(detail: dict[str, Any], arms: dict[str, ArmResult]) -> str:
    """The tables of :func:`difficulty_evidence`."""
    labels = detail["labels"]
    lines = ["### Refine rate, accuracy and tokens by difficulty", "",
             "Refine rate: share of answers with a `<refine>` (95% CI over problems); refining / not refining: "
             "accuracy of those answers (95% CI over answers).", "",
             "| Arm | Difficulty | Answers | Accuracy % | Tokens | Refine rate (95% CI) | Refining: n, right | "
             "Not refining: n, right |", "|---|---|---:|---:|---:|---|---|---|"]
    for name, a in detail["arms"].items():
        for label in [*labels, "all"]:
            b = a["by_difficulty"][label]
            acc = "–" if b["accuracy"] is None else f"{100 * b['accuracy']:.1f}"
            tok = "–" if b["tokens"] is None else f"{b['tokens']:.0f}"
            ref, non = b["refining"], b["non_refining"]
            lines.append(f"| {arms[name].arm.label} | {label} | {b['answers']} | {acc} | {tok} | "
                         f"{_pct_ci(b['refine_rate'], b['refine_ci'])} | {ref['n']}, "
                         f"{_pct_ci(ref['accuracy'], ref['ci'])} | {non['n']}, {_pct_ci(non['accuracy'], non['ci'])} |")
    lines += ["", "### Hard against easy", "",
              "| Arm | easy refine rate | hard refine rate | hard / easy | hard minus easy, points (95% CI) |",
              "|---|---:|---:|---|---|"]
    for name, a in detail["arms"].items():
        r = a["hard_vs_easy"]
        if r["hard"] is None:
            continue
        lines.append(f"| {arms[name].arm.label} | {r['easy']:.1%} | {r['hard']:.1%} | {_ratio(r)} | "
                     f"{r['difference_points']:+.1f} ({r['difference_ci_points'][0]:+.1f} to "
                     f"{r['difference_ci_points'][1]:+.1f}) |")
    if detail["refining_vs_reference"]:
        lines += ["", f"### Refining answers against {_reference_words(detail, arms)} to the same problems", "",
                  "Every refining answer (all seeds) paired with the reference's answer to its problem; paired "
                  "bootstrap 95% CI.", "",
                  "| Arm | Difficulty | refining answers | right | reference right | points (95% CI) |",
                  "|---|---|---:|---:|---:|---|"]
        for name, by_label in detail["refining_vs_reference"].items():
            if not by_label["all"]["pairs"]:
                lines.append(f"| {arms[name].arm.label} | all | 0 | – | – | – |")
                continue
            for label, c in by_label.items():
                if not c["pairs"]:
                    lines.append(f"| {arms[name].arm.label} | {label} | 0 | – | – | – |")
                    continue
                lines.append(f"| {arms[name].arm.label} | {label} | {c['pairs']} | {c['refining_accuracy']:.1%} | "
                             f"{c['standard_accuracy']:.1%} | {c['delta_points']:+.1f} ({c['ci_points'][0]:+.1f} to "
                             f"{c['ci_points'][1]:+.1f}) |")
    mixed = {name: c for name, c in detail["refining_vs_not"].items() if c["problems"]}
    if detail["refining_vs_not"]:
        lines += ["", "### Refining against non-refining answers of the same arm to the same problems", "",
                  "Problems where some seeds' answers refined and others' did not; paired over those problems.", ""]
        if mixed:
            lines += ["| Arm | problems | refining right | not refining right | points (95% CI) |",
                      "|---|---:|---:|---:|---|"]
            lines += [f"| {arms[name].arm.label} | {c['problems']} | {c['refining_accuracy']:.1%} | "
                      f"{c['non_refining_accuracy']:.1%} | {c['delta_points']:+.1f} ({c['ci_points'][0]:+.1f} to "
                      f"{c['ci_points'][1]:+.1f}) |" for name, c in mixed.items()]
        else:
            lines.append("No such problem: every problem's seeds agreed on refining.")
    if "pasr_vs_trigger" in detail:
        c = detail["pasr_vs_trigger"]
        lines += ["", "### Tokens: PASR against the trigger reward", "",
                  f"PASR {arms['pasr'].mean_tokens:.0f} tokens per answer, trigger {arms['trigger'].mean_tokens:.0f}: "
                  f"{c['token_ratio']:.2f}x; accuracy {_points(c)}."]
    return "\n".join(lines)


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    passed: bool


def check_targets(arms: dict[str, ArmResult], *, min_gain: float = 5.0, max_token_ratio: float = 1.2,
                  min_refine_rate: float = 0.05, max_self_refine_token_ratio: float = 0.6,
                  standard: str = "pasr-standard", training: dict[str, Any] | None = None,
                  difficulty: dict[str, Any] | None = None, min_hard_easy_ratio: float = 2.0,
                  max_trigger_token_ratio: float = 0.8) -> tuple[list[Target], dict[str, Any]]:
    """The experiment's targets, each with the measured value; also returns the comparisons behind them.

    ``standard`` names the arm of the PASR models' standard-prompt answers (held-out refine check, if present);
    ``training`` is :func:`training_refine_vs_baseline` of the PASR runs (the same check on training rollouts).
    ``difficulty`` (:func:`difficulty_evidence`, for problems labelled easy / hard) switches to issue 12's targets:
    PASR *not worse* than the control (instead of beating it by ``min_gain``), refines on hard problems at least
    ``min_hard_easy_ratio`` times as often as on easy ones, refining answers right more often than the warm-up's
    standard-prompt answers to the same problems, and at most ``max_trigger_token_ratio`` times the tokens of the
    ``trigger`` arm at no lower accuracy (CI upper bound >= 0).
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
        if difficulty is not None and name == "control":
            targets.append(Target(
                f"PASR is not worse than the {label}", "CI upper bound >= 0",
                f"{_points(c)}, {c['token_ratio']:.2f}x tokens", c["ci_points"][1] >= 0))
            continue
        token_cap = max_token_ratio if difficulty is None else float("inf")  # issue 12 states no token cap here
        targets.append(Target(
            f"PASR beats {label}",
            f">= +{min_gain:g} points, CI above 0" + (f", <= {max_token_ratio:g}x tokens" if difficulty is None else ""),
            f"{c['delta_points']:+.1f} points (95% CI {c['ci_points'][0]:+.1f} to {c['ci_points'][1]:+.1f}), "
            f"{c['token_ratio']:.2f}x tokens",
            c["delta_points"] >= min_gain and c["ci_points"][0] > 0 and c["token_ratio"] <= token_cap,
        ))
    rates = ", ".join(f"{s['refine_rate']:.1%}" for s in pasr.per_seed)
    targets.append(Target("refinement does not collapse", f"refine rate > {min_refine_rate:.0%}",
                          f"{pasr.refine_rate:.1%} (seeds: {rates})", pasr.refine_rate > min_refine_rate))
    if difficulty is not None:
        targets.append(_hard_easy_target(difficulty["arms"]["pasr"]["hard_vs_easy"], min_hard_easy_ratio))
    refines = []
    if standard in arms:
        refines.append(("held-out, vs the same model's standard-prompt answer",
                        refine_vs_standard(pasr, arms[standard])))
    if difficulty is not None and "pasr" in difficulty["refining_vs_reference"]:
        refines.append((f"held-out, vs {_reference_words(difficulty, arms)} to the same problems",
                        difficulty["refining_vs_reference"]["pasr"]["all"]))
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
    if difficulty is not None and "trigger" in arms:
        c = comparisons["pasr-vs-trigger"]
        targets.append(Target(
            "PASR needs fewer tokens than the trigger reward",
            f"<= {max_trigger_token_ratio:g}x trigger's tokens, accuracy not lower (CI upper bound >= 0)",
            f"{c['token_ratio']:.2f}x tokens ({pasr.mean_tokens:.0f} vs {arms['trigger'].mean_tokens:.0f}), "
            f"{_points(c)}",
            c["token_ratio"] <= max_trigger_token_ratio and c["ci_points"][1] >= 0,
        ))
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
           "difficulty_breakdown", "difficulty_evidence", "difficulty_markdown", "hard_vs_easy", "load_arm",
           "read_difficulties", "refine_vs_standard", "refining_vs_not_same_problems", "refining_vs_reference",
           "targets_markdown", "training_markdown", "training_refine_vs_baseline"]
