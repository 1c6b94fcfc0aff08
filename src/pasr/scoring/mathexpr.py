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
- a whole response without ``<answer>``: its last ``\\boxed{}`` is its answer (a
  self-correcting response's earlier boxes are not a set of answers); without a box, its last
  "answer is ..." statement; without either, math-verify's default extraction (the last
  expression).

Before either path the answer is cleaned (:func:`clean_answer`: Unicode minus, markdown,
``\\sqrt(2)``, mixed numbers), and an answer that hedges between candidates for a one-value
reference (:func:`hedges`) scores 0. Numbers follow one rule on every path:
:func:`pasr.scoring.numeric.numbers_equal` (exact values exactly, written decimals to their
written precision), never math-verify's 6-place rounding, which calls tiny values equal.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from fractions import Fraction

from pasr.scoring.extract import answer_text, boxes, last_boxed, strip_markdown, unwrap, unwrap_boxed
from pasr.scoring.numeric import final_statement, fold_unicode, numbers_equal, read_plain

# --- parent side: what the answer is, and the fast path --------------------------------

_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\{([^{}]*)\}")
_SQRT_PAREN = re.compile(r"\\?sqrt\s*\(")
_MIXED = re.compile(r"(?<![\d.,/^{])(-?)(\d{1,9})(?:\s+(\d{1,9})\s*/\s*(\d{1,9})|\s*\\[dt]?frac\{(\d{1,9})\}\{(\d{1,9})\})(?![\d/])")
_HEDGE = re.compile(  # several candidates: "19 or 20", "19 \\vee 20", "19 \\\\ 20", "19 \\to 20", a cases block
    r"(?i)(?<![a-z\\])(?:or|either|and/or)(?![a-z])|\\text\{\s*or\s*\}"
    r"|\\(?:lor|vee|to|implies|Rightarrow|rightarrow|Longrightarrow|iff|mid|quad|qquad)(?![a-zA-Z])"
    r"|\\\\|\\&|\\begin\{cases\}|(?<=\d)[^\S\n]*[|~\n]\s*(?=[-\d])|;"
)
_CHAIN = re.compile(r"=|\\approx|≈")
_UNITS = (
    re.compile(r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|°)\s*$"),  # 18^\circ, 18°
    re.compile(r"(?:\s*\\(?:text|mbox|mathrm)\s*\{\s*[a-zA-Z][a-zA-Z .]*\}(?:\^\{?\d\}?)?)+\s*$"),  # 18 \text{ cm}^2
    re.compile(r"(?:\s+(?!(?:or|and)\b)[a-zA-Z]{2,}\.?)+\s*$"),  # 18 dollars, 18 square feet
)
MAX_ANSWER_CHARS = 4000
"""An answer text (``<answer>`` content or a box) longer than this is not a final answer: it scores 0."""

_SEVERAL = re.compile(r",|;|&|\\\\|\\begin|\\cup|\\pm|\\mp|\\lor|\\vee|(?i:\bor\b)")
"""What makes a reference several-valued (a set, tuple, matrix, cases): hedge checks do not apply to it."""


def _paren_to_braces(text: str, start: int) -> str:
    """``text`` with the ``(...)`` group opening at ``start`` written as ``{...}`` (unchanged when unbalanced)."""
    depth = 0
    for i in range(start, min(len(text), start + 256)):  # a longer argument is left as written
        depth += (text[i] == "(") - (text[i] == ")")
        if depth == 0:
            return text[:start] + "{" + text[start + 1 : i] + "}" + text[i + 1 :]
    return text


def clean_answer(text: str) -> str:
    """A math answer in the spelling math-verify reads correctly.

    Unicode and markdown as for numbers (:func:`pasr.scoring.numeric.normalize` without its
    number rewrites): ``−3`` is ``-3``, ``**73**`` is ``73``. ``\\sqrt(2)`` and ``sqrt(2)``
    become ``\\sqrt{2}`` (math-verify otherwise drops the argument: ``5\\sqrt(2)`` read as 5).
    Mixed numbers ``1 1/4`` and ``1 \\frac{1}{4}`` become ``\\frac{5}{4}``.
    """
    text = fold_unicode(text)
    if "*" in text or "_" in text or "`" in text:
        text = strip_markdown(text)
    for _ in range(8 if "sqrt" in text else 0):  # nested \sqrt(\sqrt(x)) needs a pass per level; no more
        m = _SQRT_PAREN.search(text)
        if not m:
            break
        text = text[: m.start()] + "\\sqrt" + _paren_to_braces(text, m.end() - 1)[m.end() - 1 :]

    def mixed(m: re.Match) -> str:
        whole, num, den = int(m.group(2)), int(m.group(3) or m.group(5)), int(m.group(4) or m.group(6))
        if den == 0:
            return m.group(0)
        return f"{m.group(1)}\\frac{{{whole * den + num}}}{{{den}}}"

    return _MIXED.sub(mixed, text)


def answer_span(text: str, tagged: bool) -> tuple[str, bool]:
    """``(text, tagged)`` narrowed to the final answer: a whole response's last ``\\boxed{}`` counts as its answer.

    A self-correcting response ("\\boxed{5} ... that is wrong ... \\boxed{7}") answers 7; its
    earlier boxes are not a set of answers. Without a box, the last "answer is ..." statement is
    the answer; without either, math-verify's own extraction reads the whole response.
    """
    if tagged:
        return text, True
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed, True
    statement = final_statement(text)  # "... The final answer is $18$. I hope it is correct."
    if statement:
        return statement, True
    return text, False


def hedges(text: str, tagged: bool, reference: str) -> bool:
    """Whether an answer offers several candidates ("18 or 19", "\\boxed{5}, \\boxed{7}") for a one-value reference.

    Only answer texts (``tagged``) are judged: a whole response's reasoning may say "or".
    """
    if not tagged or _SEVERAL.search(str(reference)):
        return False  # a set, tuple or "x or y" reference: several values may be the answer
    if _HEDGE.search(text):
        return True
    chain = [read_plain(part) for part in _CHAIN.split(unwrap_boxed(text))]
    if len(chain) > 1 and all(chain) and any(not numbers_equal(chain[0], n) for n in chain[1:]):
        return True  # "19 = 20": a chain of numbers that do not agree
    return len({b for b in _boxed_contents(text)}) > 1


def _boxed_contents(text: str, limit: int = 8) -> list[str]:
    """Normalised contents of the outermost boxes (at most ``limit``; nested boxes are inside them)."""
    out, reach = [], -1
    for start, content, close in boxes(text):
        if start > reach:
            out.append(normalize_latex(text[content:close]))
            reach = close
            if len(out) >= limit:
                break
    return out


def normalize_latex(text: str) -> str:
    """A canonical spelling for exact comparison: no spacing commands, ``\\left``/``\\right``, ``\\text``, blanks."""
    text = unwrap(text)
    text = _TEXT_CMD.sub(r"\1", text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\\(?:left|right)(?![a-zA-Z])", "", text)
    text = re.sub(r"\\[,;:! ]", "", text)
    text = text.replace("^\\circ", "").replace("^{\\circ}", "").replace("{,}", ",")
    return re.sub(r"\s+", "", text)


def _plain_value(text: str):
    """The number a math answer is, units and degree signs aside ("18 dollars", "18^\\circ"), else None."""
    found = read_plain(text)
    if found is not None:
        return found
    bare = unwrap(text)
    for units in _UNITS:
        bare = units.sub("", bare)
    return read_plain(bare) if bare and bare != text else None


def prepare(response: str, reference: str) -> float | tuple[str, bool]:
    """The parent side of one math item: its score when decided here, else ``(text, tagged)`` for :func:`verify_math`.

    The answer (:func:`answer_span`), cleaned (:func:`clean_answer`); 0 for an answer longer
    than :data:`MAX_ANSWER_CHARS` or one that :func:`hedges`; 1 for the reference as written;
    then :func:`fast_path`.
    """
    text, tagged = answer_span(*answer_text(response))
    if tagged and len(text) > MAX_ANSWER_CHARS:
        return 0.0
    if tagged and text == reference.strip():
        return 1.0  # the reference, as written
    text = clean_answer(text)
    if hedges(text, tagged, reference):
        return 0.0
    fast = fast_path(text, tagged, reference)
    return (text, tagged) if fast is None else fast


def fast_path(text: str, tagged: bool, reference: str) -> float | None:
    """1.0/0.0 when no symbolic check is needed, else None (send it to :func:`verify_math`).

    ``text`` is a cleaned answer (:func:`clean_answer`). Decided here: the same text after
    LaTeX clean-up, and two plain numbers, compared by :func:`pasr.scoring.numeric.numbers_equal`
    (the rule :func:`verify_math` also applies to numbers it parses).
    """
    if not tagged:
        return None  # a whole response needs math-verify's extraction
    if normalize_latex(text) == normalize_latex(reference) and normalize_latex(text):
        return 1.0
    gold, pred = _plain_value(reference), _plain_value(text)
    if gold is not None and pred is not None:
        return 1.0 if numbers_equal(gold, pred) else 0.0
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


def _exact_number(expr):
    """``expr`` evaluated when it is a number that math-verify would compare with rounding, else None.

    math-verify compares numbers to 6 decimal places (``float_rounding``), and non-atomic
    numeric expressions after ``evalf(chop=True)``, which calls ``2^{-98}`` and ``2^{-99}``
    equal. Plain numbers are decided by :func:`pasr.scoring.numeric.numbers_equal` instead.
    """
    from sympy import Float

    try:
        if not getattr(expr, "is_number", False) or expr.has(Float) or not expr.is_real:
            return None
        return expr.doit()
    except Exception:  # noqa: BLE001 - anything odd goes to math-verify
        return None


def _numbers_match(gold, pred) -> bool | None:
    """Exact numbers compared without rounding: True/False, or None when math-verify should decide."""
    from sympy import Float

    a, b = _exact_number(gold), _exact_number(pred)
    if a is None or b is None:
        return None
    if a.is_Rational and b.is_Rational:
        return numbers_equal(Fraction(int(a.p), int(a.q)), Fraction(int(b.p), int(b.q)))
    va, vb = a.evalf(60), b.evalf(60)  # exact irrationals: equal to 50 significant digits, relative
    scale = max(abs(va), abs(vb))
    return bool(scale == 0 or abs(va - vb) <= scale * Float("1e-50", 60))


def verify_math(text: str, tagged: bool, reference: str) -> float:
    """1.0 when the answer is mathematically equivalent to the reference (math-verify), else 0.0.

    ``text, tagged`` come from :func:`answer_span` and :func:`clean_answer`. Two exact
    numbers are compared exactly (:func:`_numbers_match`); everything else by math-verify's
    ``verify``. Runs without math-verify's signal-based timeouts; call it under
    :func:`run_item` (worker main thread) so a pathological input is still cut off.
    """
    fast = fast_path(text, tagged, reference)
    if fast is not None:
        return fast
    from math_verify import verify

    for gold in gold_parses(reference):
        for pred in pred_parses(text, tagged):
            try:
                same = _numbers_match(gold[0], pred[0]) if "%" not in text + reference else None
                if same is None:
                    same = verify(gold, pred, timeout_seconds=None)
                if same:
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
    verify_math("2(k+1)", True, "2k+2")  # warm sympy, the LaTeX grammar and math-verify's verify
    verify_math("2^{-3}", True, "\\frac{1}{8}")  # and the exact-number comparison


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
