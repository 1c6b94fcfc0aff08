"""Read evaluation run folders (the layout `pasr eval` writes) into plain Python objects.

The report recomputes every number from the per-example JSONL files, because summaries can be stale (a run
resumed after the summary was written) or missing; summaries are read only to warn when they disagree.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pasr.data.benchmarks import BENCHMARKS
from pasr.errors import PasrError
from pasr.eval.metrics import read_results
from pasr.jsonl import read_jsonl
from pasr.scoring import judge_metric_of, metric_of

BENCHMARK_ORDER = tuple(BENCHMARKS)  # display order of known benchmarks; unknown names follow, alphabetically
METHOD_ORDER = ("vanilla", "pasr", "self-refine", "self-refine-oracle", "ptr", "score", "rise", "rise-oracle")


def ordered(names, preferred: tuple[str, ...]) -> list[str]:
    """``names`` sorted with the ``preferred`` ones first, in that order."""
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))


@dataclass
class Results:
    """One ``<benchmark>/<method>.jsonl`` file: its examples in file order, one per id."""

    benchmark: str
    method: str
    path: Path
    examples: list[dict]
    metric: str
    summary: dict | None = None


@dataclass
class Run:
    """One RUN_DIR: its run.json, a display label, and results by benchmark and method."""

    path: Path
    label: str
    info: dict
    results: dict[str, dict[str, Results]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def benchmarks(self) -> list[str]:
        return ordered(self.results, BENCHMARK_ORDER)

    @property
    def methods(self) -> list[str]:
        return ordered({m for by_method in self.results.values() for m in by_method}, METHOD_ORDER)

    def get(self, benchmark: str, method: str) -> Results | None:
        return self.results.get(benchmark, {}).get(method)

    @property
    def scorer(self) -> str:
        """run.json ``scorer`` (rule, judge or both); folders written before the option say nothing: rule."""
        value = self.info.get("scorer")
        return value.strip() if isinstance(value, str) and value.strip() else "rule"

    @property
    def judge_model(self) -> str | None:
        """run.json ``judge_model``, or None."""
        value = self.info.get("judge_model")
        return value.strip() if isinstance(value, str) and value.strip() else None

    @property
    def primary_scorer(self) -> str:
        """Who gave the ``score`` field Table 1 is made of: ``rule``, or ``judge`` (under judge and both)."""
        return "judge" if self.scorer in ("judge", "both") else "rule"

    def scorer_label(self) -> str:
        """The scorer as the runs table shows it, with the judge model when the judge scored."""
        if self.scorer != "rule" and self.judge_model:
            return f"{self.scorer} ({self.judge_model})"
        return self.scorer


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PasrError(f"{path}: cannot read JSON ({err}); fix or delete the file") from err
    if not isinstance(value, dict):
        raise PasrError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _check_summary(run: Run, path: Path, summary: dict, examples: list[dict]) -> None:
    """Warn when a summary disagrees with its JSONL (the report always uses the JSONL)."""
    n, score = summary.get("n"), summary.get("score")
    actual = sum(e["score"] for e in examples) / len(examples)
    if isinstance(n, int) and n != len(examples):
        run.warnings.append(f"{path}: says n={n} but the JSONL has {len(examples)} examples; using the JSONL")
    elif isinstance(score, (int, float)) and abs(score - actual) > 1e-6:
        run.warnings.append(f"{path}: says score={score:.4f} but the JSONL gives {actual:.4f}; using the JSONL")


def run_label(path: Path, info: dict) -> str:
    """run.json ``label``, else its ``model``, else the folder name."""
    for key in ("label", "model"):
        value = info.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return path.resolve().name


def load_run(path: str | Path) -> Run:
    """Load one RUN_DIR; raise PasrError when it is missing or holds no results."""
    path = Path(path)
    if not path.is_dir():
        raise PasrError(f"{path}: not a folder; pass a RUN_DIR written by `pasr eval`")
    info_path = path / "run.json"
    info = _read_json(info_path) if info_path.is_file() else {}
    run = Run(path=path, label=run_label(path, info), info=info)
    waiting: list[tuple[Path, str, str]] = []  # responses the judge has not scored yet (pasr eval --scorer)
    for bench_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        for file in sorted(bench_dir.glob("*.jsonl")):
            method = file.name[: -len(".jsonl")]
            if method.endswith(".unjudged"):
                waiting.append((file, bench_dir.name, method[: -len(".unjudged")]))
                continue
            if "." in method:  # <method>.analysis.jsonl and similar side files
                continue
            found = read_results(file)
            run.warnings.extend(found.messages())
            examples = found.examples
            if not examples:
                run.warnings.append(f"{file}: no examples, skipped")
                continue
            summary_path = bench_dir / f"{method}.summary.json"
            summary = _read_json(summary_path) if summary_path.is_file() else None
            if summary is not None:
                _check_summary(run, summary_path, summary, examples)
            metric = (summary or {}).get("metric") or (
                judge_metric_of(bench_dir.name) if run.primary_scorer == "judge"
                else metric_of(str(examples[0].get("task", "")))
            )
            run.results.setdefault(bench_dir.name, {})[method] = Results(
                benchmark=bench_dir.name, method=method, path=file, examples=examples, metric=metric,
                summary=summary,
            )
    unjudged = 0
    for file, bench, method in waiting:
        results = run.get(bench, method)
        scored = {str(e["id"]) for e in results.examples} if results else set()
        ids = {str(row.get("id")) for row in read_jsonl(file).rows} - scored
        if ids:
            unjudged += len(ids)
            run.warnings.append(f"{file}: {len(ids)} response(s) wait for the judge and are not counted; "
                                "rerun the `pasr eval` command to judge them")
    for by_method in run.results.values():
        for results in by_method.values():
            fallbacks = sum(e.get("judge_status") == "fallback" for e in results.examples)
            if fallbacks:
                run.warnings.append(f"{results.path}: the judge's reply held no score for {fallbacks} of "
                                    f"{len(results.examples)} responses, scored 0 (is the judge's reply cut short?)")
    if not run.results:
        held = f"; it holds only {unjudged} response(s) waiting for the judge: rerun `pasr eval` to judge them" \
            if unjudged else ""
        raise PasrError(
            f"{path}: no results found; expected <benchmark>/<method>.jsonl files (e.g. "
            f"{path / 'gsm8k' / 'vanilla.jsonl'}) as written by `pasr eval`{held}"
        )
    return run


def scorer_warnings(runs: list[Run]) -> list[str]:
    """Warnings when Table 1 would compare numbers scored differently: rule vs judge, or different judges."""
    out = []
    if len({run.primary_scorer for run in runs}) > 1:
        which = "; ".join(f"{run.label}: {run.scorer_label()}" for run in runs)
        out.append(f"Table 1 mixes rule- and judge-scored numbers, which are not directly comparable ({which})")
    judges = {run.judge_model or "?" for run in runs if run.primary_scorer == "judge"}
    if len(judges) > 1:
        which = "; ".join(f"{run.label}: {run.judge_model or '?'}" for run in runs if run.primary_scorer == "judge")
        out.append(f"Table 1 mixes numbers scored by different judge models ({which})")
    return out


def load_runs(paths) -> list[Run]:
    """Load several RUN_DIRs, giving each a distinct label (folder name appended on clashes)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise PasrError("no RUN_DIR given; pass one or more folders written by `pasr eval`")
    seen: dict[Path, Path] = {}
    for p in paths:
        resolved = p.resolve()
        if resolved in seen:
            raise PasrError(f"{p}: given twice (also as {seen[resolved]}); pass each RUN_DIR once")
        seen[resolved] = p
    runs = [load_run(p) for p in paths]
    base = [run.label for run in runs]
    for suffix in (lambda r: r.path.resolve().name, lambda r: str(r.path)):
        counts = Counter(run.label for run in runs)
        for run, label in zip(runs, base):
            if counts[run.label] > 1:
                run.label = f"{label} ({suffix(run)})"
    return runs
