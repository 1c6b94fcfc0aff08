"""The math process pool: scoring off the main thread, per-item timeouts, stuck workers, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pasr.scoring import Scorer, score
from pasr.scoring.mathexpr import verify_math

# (answer, reference) pairs that need math-verify itself (not the parent's fast path)
SYMBOLIC = [("\\frac{1}{2}", "0.5"), ("2(k+1)", "2k+2"), ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)")]


def hook_math(text: str, tagged: bool, reference: str) -> float:
    """Worker-side test hook (module level so spawned workers can import it by name).

    ``slow``: sleeps, which the worker's interval timer interrupts. ``stuck``: ignores the
    timer signal and sleeps, like C code that never returns to the interpreter, so only the
    parent's hard deadline can end it. Anything else is scored for real.
    """
    if text == "slow":
        time.sleep(30)
    if text == "stuck":
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(30)
    return verify_math(text, tagged, reference)


def test_math_scores_from_a_non_main_thread():
    """math-verify's own signal-based timeout makes it return 0 off the main thread; ours must not."""
    results = {}

    def work():
        results["single"] = [score("math", f"<answer>{a}</answer>", r) for a, r in SYMBOLIC]
        with Scorer(timeout=10.0) as s:
            results["batch"] = s.score_many(["math"] * 3, [f"<answer>{a}</answer>" for a, _ in SYMBOLIC],
                                            [r for _, r in SYMBOLIC])
            results["wrong"] = s.score_many(["math"], ["<answer>2k+3</answer>"], ["2k+2"])

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    assert results == {"single": [1.0, 1.0, 1.0], "batch": [1.0, 1.0, 1.0], "wrong": [0.0]}


def test_slow_item_is_cut_by_the_worker_timer_without_a_restart():
    with Scorer(timeout=0.3, math_fn=hook_math) as s:
        s.score_many(["math"], ["<answer>\\frac{2}{4}</answer>"], ["0.5"])  # start the pool outside the clock
        started = time.monotonic()
        got = s.score_many(["math"] * 3, ["<answer>slow</answer>", "<answer>\\frac{1}{2}</answer>", "<answer>slow</answer>"],
                           ["1", "0.5", "1"])
        elapsed = time.monotonic() - started
        assert got == [0.0, 1.0, 0.0]
        assert s.timeouts == 2 and s.restarts == 0
        assert elapsed < 5.0


def test_stuck_worker_is_killed_and_the_pool_recreated():
    with Scorer(timeout=0.3, workers=2, math_fn=hook_math) as s:
        got = s.score_many(
            ["math"] * 4,
            ["<answer>stuck</answer>", "<answer>\\frac{1}{2}</answer>", "<answer>2(k+1)</answer>", "<answer>7</answer>"],
            ["1", "0.5", "2k+2", "\\frac{14}{2}"],
        )
        assert got == [0.0, 1.0, 1.0, 1.0]
        assert s.timeouts == 1 and s.restarts == 1
        # the new pool works
        assert s.score_many(["math"], ["<answer>\\sqrt{4}</answer>"], ["2"]) == [1.0]


def test_math_items_run_in_parallel_and_keep_their_order():
    answers = ["\\frac{1}{2}", "\\frac{3}{4}", "2(k+1)", "\\sqrt{9}", "(1,2)"] * 4
    references = ["0.5", "0.7", "2k+2", "3", "(2,1)"] * 4
    with Scorer(workers=2, timeout=10.0) as s:
        got = s.score_many(["math"] * len(answers), [f"<answer>{a}</answer>" for a in answers], references)
        assert got == [1.0, 0.0, 1.0, 1.0, 0.0] * 4
        assert s._pool is not None
    assert s._pool is None  # closed by the context manager


def test_workers_do_not_rerun_an_unguarded_main_script(tmp_path):
    """Spawned workers would re-import the caller's script; a script without a main guard must run once."""
    marker = tmp_path / "runs.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        from pasr.scoring import Scorer
        with open({str(marker)!r}, "a") as f:
            f.write("run\\n")
        with Scorer(timeout=10.0) as s:
            print(s.score_many(["math"], ["<answer>\\\\frac{{1}}{{2}}</answer>"], ["0.5"]))
    """))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1.0]"
    assert marker.read_text().splitlines() == ["run"]


def test_bad_settings_are_rejected():
    from pasr.errors import PasrError

    with pytest.raises(PasrError, match="workers"):
        Scorer(workers=0)
    with pytest.raises(PasrError, match="timeout"):
        Scorer(timeout=0)
