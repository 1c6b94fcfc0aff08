"""Math answers: symbolic equivalence with math-verify, plus cheap exact checks that skip it.

math-verify (``parse``/``verify``) understands LaTeX, ``\\boxed{}``, fractions, intervals,
tuples, matrices and sets, but sympy can take seconds (or forever) on odd input, and
math-verify's own timeout uses ``signal.alarm``, which silently scores 0 off the main
thread. So the symbolic check (:func:`verify_math`) runs in a worker process
(:class:`pasr.scoring.Scorer` owns the pool) under :func:`run_item`, which puts its own
interval timer around each item. Cases that need no sympy -- both sides plain numbers,
or the same text after LaTeX clean-up -- are decided in the caller by :func:`fast_path`.

How each side is parsed:
- reference: wrapped in ``$...$`` (MATH answers are bare LaTeX such as
  ``\\left( 3, \\frac{\\pi}{2} \\right)``) unless it already has delimiters or ``\\boxed{}``
  (AIME references are ``\\boxed{204}``). Never parsed raw: unanchored extraction would
  read ``2k+2`` as ``2``.
- ``<answer>`` content: same wrapping; when it reads like prose ("The answer is 18") or the
  wrapped parse finds nothing, math-verify's anchored extraction on the raw text is tried too.
- a whole response without ``<answer>``: math-verify's default extraction (``\\boxed{}``
  first, then "final answer is ..." anchors, then the last expression).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from fractions import Fraction

from pasr.scoring.numeric import find_numbers, same_number

# --- parent-side fast path ------------------------------------------------------------

_PLAIN_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_BOXED_WHOLE = re.compile(r"^\\boxed\{(.*)\}$", re.DOTALL)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\{([^{}]*)\}")


def _unwrap(text: str) -> str:
    """Strip one layer of ``$...$`` / ``\\(...\\)`` / ``\\boxed{...}`` around the whole text and a final period."""
    text = text.strip()
    for _ in range(3):
        before = text
        text = text.rstrip(".").strip()
        if len(text) >= 2 and text[0] == "$" and text[-1] == "$":
            text = text.strip("$").strip()
        if text.startswith("\\(") and text.endswith("\\)"):
            text = text[2:-2].strip()
        if text.startswith("\\[") and text.endswith("\\]"):
            text = text[2:-2].strip()
        m = _BOXED_WHOLE.match(text)
        if m:
            text = m.group(1).strip()
        if text == before:
            break
    return text


def normalize_latex(text: str) -> str:
    """A canonical spelling for exact comparison: no spacing commands, ``\\left``/``\\right``, ``\\text``, blanks."""
    text = _unwrap(text)
    text = _TEXT_CMD.sub(r"\1", text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\\(?:left|right)(?![a-zA-Z])", "", text)
    text = re.sub(r"\\[,;:! ]", "", text)
    text = text.replace("^\\circ", "").replace("^{\\circ}", "").replace("{,}", ",")
    return re.sub(r"\s+", "", text)


def plain_number(text: str) -> Fraction | None:
    """The value of text that is only a number (``18``, ``$18``, ``1,000``, ``18.0``, ``\\boxed{18}``), else None.

    Units, percent signs or words make it not plain: those go to math-verify, which knows
    that ``18\\%`` equals ``0.18``.
    """
    t = normalize_latex(text)
    t = t.replace("\\$", "").lstrip("$")
    if not _PLAIN_NUMBER.fullmatch(t):
        return None
    found = find_numbers(t)
    return found[0] if len(found) == 1 else None


def fast_path(text: str, tagged: bool, reference: str) -> float | None:
    """1.0/0.0 when no symbolic check is needed, else None (send it to :func:`verify_math`)."""
    if not tagged:
        return None  # a whole response needs math-verify's extraction
    if normalize_latex(text) == normalize_latex(reference) and normalize_latex(text):
        return 1.0
    gold, pred = plain_number(reference), plain_number(text)
    if gold is not None and pred is not None:
        return 1.0 if same_number(gold, pred) else 0.0
    return None


# --- worker side: math-verify ---------------------------------------------------------

_DELIMS = re.compile(r"\$|\\\(|\\\[|\\boxed")
_PROSE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}\s+[a-zA-Z]{2,}\s+[a-zA-Z]{2,}")


def _parse(text: str, configs=None) -> list:
    from math_verify import parse

    kwargs = {"parsing_timeout": None}  # our own timer (run_item) bounds the whole item
    if configs is not None:
        kwargs["extraction_config"] = configs
    try:
        return parse(text, **kwargs)
    except Exception:  # noqa: BLE001 - math-verify raises on some malformed LaTeX; that is "no parse"
        return []


def gold_parses(reference: str) -> list[list]:
    """math-verify parses of the reference (see module docstring)."""
    ref = str(reference).strip()
    found = _parse(ref) if _DELIMS.search(ref) else _parse(f"${ref}$")
    if not found:
        found = _parse(f"\\boxed{{{ref}}}")
    return [found] if found else []


def pred_parses(text: str, tagged: bool) -> list[list]:
    """math-verify parses of the model's answer, most specific first."""
    if not tagged or _DELIMS.search(text):
        found = _parse(text)
        return [found] if found else []
    out = []
    wrapped = _parse(f"${text}$")
    if wrapped:
        out.append(wrapped)
    if not wrapped or _PROSE.search(text):
        raw = _parse(text)
        if raw:
            out.append(raw)
    return out


def verify_math(text: str, tagged: bool, reference: str) -> float:
    """1.0 when the answer is mathematically equivalent to the reference (math-verify), else 0.0.

    Runs without math-verify's signal-based timeouts; call it under :func:`run_item`
    (worker main thread) so a pathological input is still cut off.
    """
    fast = fast_path(text, tagged, reference)
    if fast is not None:
        return fast
    from math_verify import verify

    for gold in gold_parses(reference):
        for pred in pred_parses(text, tagged):
            try:
                if verify(gold, pred, timeout_seconds=None):
                    return 1.0
            except Exception:  # noqa: BLE001 - a comparison sympy cannot do is "not equal"
                continue
    return 0.0


class ItemTimeout(BaseException):
    """Raised by the worker's interval timer. A BaseException so sympy's ``except Exception`` cannot eat it."""


def _on_alarm(signum, frame):
    raise ItemTimeout()


def init_worker() -> None:
    """Process-pool initializer: import math-verify once, keep Ctrl-C for the parent, quiet its warnings."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    verify_math("1", True, "\\frac{2}{2}")  # warm sympy and the LaTeX grammar


def ping(delay: float = 0.05) -> int:
    """A no-op task used to see that every worker is up (returns its pid)."""
    import os
    import time

    time.sleep(delay)
    return os.getpid()


def run_item(fn, text: str, tagged: bool, reference: str, timeout: float | None) -> tuple[float, bool]:
    """``(score, timed_out)`` for one item, with ``fn`` cut off after ``timeout`` seconds.

    Uses ``signal.setitimer`` (sub-second, main thread only: a pool worker's main thread).
    Work that does not return to the interpreter (a long C call) is not interrupted
    here; the parent's hard deadline kills the worker then.
    """
    use_timer = bool(timeout) and threading.current_thread() is threading.main_thread()
    if use_timer:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, float(timeout))
    try:
        return float(fn(text, tagged, reference)), False
    except ItemTimeout:
        return 0.0, True
    except Exception:  # noqa: BLE001 - a scorer bug on one odd item must not end a training run
        logging.getLogger(__name__).exception("math scoring failed; scoring 0")
        return 0.0, False
    finally:
        if use_timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
