"""Speed and agreement of `pasr eval --backend vllm` against `--backend transformers` on the same problems.

Each arm is one run of the real CLI, ``pasr eval --backend B --model M --benchmark synthetic --limit N
--methods vanilla --max-tokens T --temperature 0 --dtype bfloat16 --output DIR``, in its own subprocess, into a
fresh folder. The method is ``vanilla`` (one answer turn per problem: ``pasr eval``'s default
``vanilla,pasr`` would time two methods, and vanilla runs first anyway). Both backends get ``--dtype bfloat16``
(vLLM's CPU build downcasts fp32 to bf16 under ``auto`` too; on the transformers backend bf16 weights with
eager attention are the fastest CPU path) and the same ``--batch-size`` (vLLM schedules by itself and ignores it).
By default the arms run A-B-B-A: vllm, transformers, transformers, vllm, so each backend runs once first and
once second (``--order`` changes that).

The subprocess is the ``pasr`` CLI with two timers hooked in from outside (``pasr.eval.runner.build_backend``
and the built backend's ``generate`` / ``close`` are wrapped; nothing in ``src/`` changes):

- start-up: ``build_backend`` from call to return: for vLLM ``import vllm`` (done first, timed apart as
  "imports"), engine init and model load until the engine is ready; for transformers ``import torch,
  transformers`` (likewise) and the tokenizer and model load.
- generation: the summed wall time of the backend's ``generate`` calls (pasr's vllm backend sends all N
  problems in one call, the transformers backend one call per chunk of 8 x batch size); examples/s and
  generated tokens/s (the tokens pasr counts per response, EOS included) are over that time.
- the process wall time (Python and pasr imports, scoring, summaries and the engine's shutdown included).

For the pair: the share of problems whose response text (``final`` in ``<benchmark>/vanilla.jsonl``) is
exactly equal between a vllm and a transformers run, and the repeat agreement of each backend with itself;
the accuracy of each run is the ``score`` pasr writes in ``vanilla.summary.json``. The conclusion line is the
ratio of the mean generation tokens/s, vLLM over transformers.

vLLM's CPU build binds its worker to the cores it does not reserve for its scheduler process (one on x86 in
vLLM's own default, so 1 of 2 cores on a 2-core machine; pasr reserves none unless ``VLLM_CPU_NUM_OF_RESERVED_CPU``
is set: :mod:`pasr.vllm_platform`); the table notes the cores the worker used, read from its log.
``--vllm-reserved-cpus K`` sets ``VLLM_CPU_NUM_OF_RESERVED_CPU=K`` (1: vLLM's own default), ``--vllm-env
KEY=VALUE`` any other setting of the vllm arms (``VLLM_CPU_OMP_THREADS_BIND=nobind``: no pinning). The pinning
matters on a shared machine: every engine pins its worker to the same first cores, so two engines at once share them. ``--threads`` sets ``OMP_NUM_THREADS`` for
both arms (the transformers backend's torch threads; vLLM sets its worker's own from the binding).

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python bench/vllm_eval_speed.py [--n 100] [--max-tokens 128] \\
        [--model smollm2-135m-instruct] [--order vllm,transformers,transformers,vllm] [--batch-size 8] \\
        [--threads 2] [--vllm-reserved-cpus K] [--vllm-env KEY=VALUE] [--work DIR] [--out vllm_eval_speed.json]

Smoke check (a few minutes on 2 cores): ``--n 8 --max-tokens 32 --order vllm,transformers``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = ("vllm", "transformers")
CHILD_FLAG = "--child-timings"


# --- the child: one `pasr eval` with timers ------------------------------------------------------


def child(timings_path: Path, argv: list[str]) -> None:
    """Run ``pasr ARGV`` in this process with ``build_backend``, ``generate`` and ``close`` timed; write the
    timings to ``timings_path`` (JSON) whatever the outcome, then exit with the CLI's exit code."""
    began = time.perf_counter()
    from pasr.eval import runner

    timings: dict = {"startup_s": None, "import_s": None, "generate_s": 0.0, "generate_calls": 0, "generated_tokens": 0,
                     "conversations": 0, "close_s": None, "first_generate_at_s": None, "last_generate_end_s": None}
    original = runner.build_backend

    def timed_build(settings):
        start = time.perf_counter()
        if settings.backend == "vllm":  # imported inside build_backend anyway; timed apart here
            import vllm  # noqa: F401
        else:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        timings["import_s"] = time.perf_counter() - start
        backend = original(settings)
        timings["startup_s"] = time.perf_counter() - start
        generate, close = backend.generate, backend.close

        def timed_generate(conversations, *args, **kwargs):
            start = time.perf_counter()
            if timings["first_generate_at_s"] is None:
                timings["first_generate_at_s"] = start - began
            out = generate(conversations, *args, **kwargs)
            end = time.perf_counter()
            timings["generate_s"] += end - start
            timings["generate_calls"] += 1
            timings["conversations"] += len(out)
            timings["generated_tokens"] += sum(int(n) for _, n in out)
            timings["last_generate_end_s"] = end - began
            return out

        def timed_close():
            start = time.perf_counter()
            try:
                close()
                import gc

                gc.collect()  # vLLM's engine shuts down when the LLM object goes
            finally:
                timings["close_s"] = time.perf_counter() - start

        backend.generate, backend.close = timed_generate, timed_close
        return backend

    runner.build_backend = timed_build
    code = 0
    sys.argv = ["pasr", *argv]
    try:
        from pasr.cli import main

        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        timings["process_s"] = time.perf_counter() - began
        timings["exit_code"] = code
        timings_path.write_text(json.dumps(timings, indent=2) + "\n")
    sys.exit(code)


# --- the parent: the arms, the table ------------------------------------------------------------------


def arm_env(opts, backend: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(opts.threads), MKL_NUM_THREADS=str(opts.threads), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error")
    if backend == "vllm":
        if opts.vllm_reserved_cpus is not None:
            env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(opts.vllm_reserved_cpus)
        env.update(vllm_env(opts))
    return env


def vllm_env(opts) -> dict[str, str]:
    """``--vllm-env KEY=VALUE`` settings."""
    return dict(item.split("=", 1) for item in opts.vllm_env)


def eval_args(opts, backend: str, out: Path) -> list[str]:
    return ["eval", "--backend", backend, "--model", opts.model, "--benchmark", opts.benchmark,
            "--limit", str(opts.n), "--methods", opts.method, "--max-tokens", str(opts.max_tokens),
            "--temperature", "0", "--seed", str(opts.seed), "--dtype", opts.dtype,
            "--batch-size", str(opts.batch_size), "--output", str(out)]


def run_arm(opts, index: int, backend: str, work: Path) -> dict:
    """One arm: the CLI in a subprocess into a fresh folder; its timings, results and summary."""
    out = work / f"{index}-{backend}"
    timings_path = work / f"{index}-{backend}.timings.json"
    log = work / f"{index}-{backend}.log"
    args = eval_args(opts, backend, out)
    cmd = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, str(timings_path), "--", *args]
    print(f"[{index}] {backend}: pasr {' '.join(args)}", flush=True)
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, env=arm_env(opts, backend), stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not timings_path.exists():
        sys.exit(f"arm {index} ({backend}) failed with exit code {proc.returncode}; log {log}:\n"
                 f"{log.read_text(errors='replace')[-3000:]}")
    timings = json.loads(timings_path.read_text())
    folder = out / opts.benchmark
    lines = [json.loads(x) for x in (folder / f"{opts.method}.jsonl").read_text().splitlines() if x.strip()]
    summary = json.loads((folder / f"{opts.method}.summary.json").read_text())
    run = json.loads((out / "run.json").read_text())
    if run.get("backend") != backend:
        sys.exit(f"arm {index}: run.json records backend {run.get('backend')!r}, expected {backend!r}")
    generate_s = timings["generate_s"] or float("nan")
    tokens = sum(int(x["tokens"]) for x in lines)
    cores = re.findall(r"core ids=\[([0-9, ]*)\]", log.read_text(errors="replace")) if backend == "vllm" else []
    result = {
        "index": index, "backend": backend, "output": str(out), "log": str(log),
        "n": len(lines), "tokens": tokens, "generated_tokens_timed": timings["generated_tokens"],
        "startup_s": timings["startup_s"], "import_s": timings["import_s"], "generate_s": timings["generate_s"],
        "generate_calls": timings["generate_calls"], "close_s": timings["close_s"],
        "process_s": timings["process_s"], "wall_s": wall,
        "examples_per_s": len(lines) / generate_s, "tokens_per_s": tokens / generate_s,
        "accuracy": summary["score"], "tokens_mean": summary["tokens_mean"],
        "at_limit": sum(int(x["tokens"]) >= opts.max_tokens for x in lines) / max(1, len(lines)),
        "format_valid_rate": summary.get("format_valid_rate"),
        "vllm_worker_cores": cores[-1] if cores else None,
        "responses": {str(x["id"]): x["final"] for x in lines},
    }
    print(f"    start-up {result['startup_s']:.1f} s (imports {result['import_s']:.1f} s), generation {generate_s:.1f} s "
          f"({result['tokens_per_s']:.1f} tokens/s), process {result['process_s']:.1f} s", flush=True)
    return result


def identical(a: dict[str, str], b: dict[str, str]) -> tuple[int, int]:
    """How many shared problem ids have exactly equal responses, out of how many shared ids."""
    ids = sorted(set(a) & set(b))
    return sum(a[i] == b[i] for i in ids), len(ids)


def pair_rows(arms: list[dict]) -> list[dict]:
    """Identical-response shares: each vllm run against each transformers run, and each backend's repeats."""
    rows = []
    for i, a in enumerate(arms):
        for b in arms[i + 1:]:
            same, n = identical(a["responses"], b["responses"])
            kind = "vllm vs transformers" if a["backend"] != b["backend"] else f"{a['backend']} repeat"
            rows.append({"kind": kind, "runs": [a["index"], b["index"]], "identical": same, "n": n,
                         "share": same / n if n else None})
    return rows


def fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="Built-in name or model folder.")
    parser.add_argument("--benchmark", default="synthetic")
    parser.add_argument("--n", type=int, default=100, help="Problems (pasr eval --limit N; the same N for every arm).")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--method", default="vanilla")
    parser.add_argument("--dtype", default="bfloat16", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--batch-size", type=int, default=8, help="transformers batch size (vLLM ignores it).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", default="vllm,transformers,transformers,vllm",
                        help="Comma list of backends, run in this order (default A-B-B-A).")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="OMP_NUM_THREADS of every arm.")
    parser.add_argument("--vllm-reserved-cpus", type=int, default=None,
                        help="VLLM_CPU_NUM_OF_RESERVED_CPU for the vllm arms (default: vLLM's own choice).")
    parser.add_argument("--vllm-env", action="append", default=[], metavar="KEY=VALUE",
                        help="Environment of the vllm arms, repeatable (e.g. VLLM_CPU_OMP_THREADS_BIND=nobind).")
    parser.add_argument("--work", type=Path, default=None, help="Folder for the run folders and logs (default: a temp dir).")
    parser.add_argument("--out", type=Path, default=Path("vllm_eval_speed.json"))
    opts = parser.parse_args()
    if any("=" not in item for item in opts.vllm_env):
        parser.error("--vllm-env: give KEY=VALUE")
    order = [b.strip() for b in opts.order.split(",") if b.strip()]
    if not order or any(b not in BACKENDS for b in order):
        parser.error(f"--order: a comma list of {', '.join(BACKENDS)}, got {opts.order!r}")
    work = opts.work or Path(tempfile.mkdtemp(prefix="vllm_eval_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        parser.error(f"--work {work}: give an empty or new folder (every arm needs a fresh run folder)")

    import platform

    print(f"{opts.model}, {opts.benchmark} N={opts.n}, {opts.method}, max {opts.max_tokens} tokens, greedy, "
          f"{opts.dtype}, {opts.threads} thread(s) of {os.cpu_count()} CPU(s), order {' -> '.join(order)}; work {work}",
          flush=True)
    arms = [run_arm(opts, i + 1, backend, work) for i, backend in enumerate(order)]
    pairs = pair_rows(arms)

    print("\n| # | backend | start-up s | of it imports s | generation s | examples/s | tokens/s | tokens | "
          "at limit | accuracy | process s |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for a in arms:
        print(f"| {a['index']} | {a['backend']} | {fmt(a['startup_s'])} | {fmt(a['import_s'])} | {fmt(a['generate_s'])} | "
              f"{fmt(a['examples_per_s'], '.2f')} | {fmt(a['tokens_per_s'])} | {a['tokens']} | "
              f"{100 * a['at_limit']:.0f}% | {100 * a['accuracy']:.1f}% | {fmt(a['process_s'])} |")
    per_backend = {}
    for backend in BACKENDS:
        runs = [a for a in arms if a["backend"] == backend]
        if runs:
            per_backend[backend] = {
                key: statistics.mean(a[key] for a in runs)
                for key in ("startup_s", "generate_s", "examples_per_s", "tokens_per_s", "accuracy", "process_s")
            }
            per_backend[backend]["runs"] = len(runs)
    print("\n| backend | runs | start-up s | examples/s | tokens/s | accuracy |\n|---|---:|---:|---:|---:|---:|")
    for backend, m in per_backend.items():
        print(f"| {backend} | {m['runs']} | {m['startup_s']:.1f} | {m['examples_per_s']:.2f} | "
              f"{m['tokens_per_s']:.1f} | {100 * m['accuracy']:.1f}% |")
    if pairs:
        print("\n| pair | runs | identical responses |\n|---|---|---:|")
    for p in pairs:
        print(f"| {p['kind']} | {p['runs'][0]} & {p['runs'][1]} | {p['identical']}/{p['n']} "
              f"({fmt(None if p['share'] is None else 100 * p['share'], '.0f')}%) |")
    cores = sorted({a["vllm_worker_cores"] for a in arms if a["vllm_worker_cores"] is not None})
    if cores:
        print(f"\nvLLM worker bound to core(s) [{'] ['.join(cores)}] of {os.cpu_count()}"
              f"{'' if opts.vllm_reserved_cpus is None else f' (VLLM_CPU_NUM_OF_RESERVED_CPU={opts.vllm_reserved_cpus})'}")
    elif "vllm" in order:
        print(f"\nvLLM worker: no core binding in its log ({' '.join(opts.vllm_env) or 'default settings'})")

    conclusion = None
    cross = [p for p in pairs if p["kind"] == "vllm vs transformers"]
    if "vllm" in per_backend and "transformers" in per_backend:
        ratio = per_backend["vllm"]["tokens_per_s"] / per_backend["transformers"]["tokens_per_s"]
        share = statistics.mean(p["share"] for p in cross if p["share"] is not None) if cross else None
        conclusion = (
            f"vLLM/transformers generation tokens/s = {ratio:.2f}x ({per_backend['vllm']['tokens_per_s']:.1f} vs "
            f"{per_backend['transformers']['tokens_per_s']:.1f}); start-up {per_backend['vllm']['startup_s']:.0f} s vs "
            f"{per_backend['transformers']['startup_s']:.0f} s; identical responses "
            f"{fmt(None if share is None else 100 * share, '.0f')}%; accuracy "
            f"{100 * per_backend['vllm']['accuracy']:.1f}% vs {100 * per_backend['transformers']['accuracy']:.1f}% "
            f"(N={opts.n}, {opts.max_tokens} max tokens)"
        )
        print(f"\nconclusion: {conclusion}")

    result = {
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
                     "order": order, "cpus": os.cpu_count(), "python": platform.python_version(),
                     "command": eval_args(opts, "BACKEND", Path("DIR"))},
        "arms": [{k: v for k, v in a.items() if k != "responses"} for a in arms],
        "per_backend": per_backend,
        "pairs": pairs,
        "conclusion": conclusion,
    }
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {opts.out}")


if __name__ == "__main__":  # the guard vLLM's engine processes need (they re-import the main module)
    if len(sys.argv) > 2 and sys.argv[1] == CHILD_FLAG:
        rest = sys.argv[3:]
        child(Path(sys.argv[2]), rest[1:] if rest[:1] == ["--"] else rest)
    else:
        main()
