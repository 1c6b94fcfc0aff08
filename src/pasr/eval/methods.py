"""Evaluation methods: short chains of chat turns over a backend, batched across examples.

Each method takes a list of records and returns one :class:`Outcome` per record: the turns it ran and
the text to score. A turn is batched across all examples that need it (every first answer, then every
second turn, ...), so the backend always sees as many conversations as it can batch.

- ``vanilla``: standard system prompt, one answer.
- ``pasr``: PASR system prompt, one answer (a PASR-trained model, or any model as "PASR(+prompt)").
- ``self-refine``: a standard answer, then up to ``rounds`` feedback turns in which the model reviews
  its previous answer and either confirms it (then that answer is scored and the chain stops) or gives
  a corrected solution (which becomes the answer to review next).
- ``self-refine-oracle`` (Self-Refine+): a standard answer; only answers the scorer marks wrong get a
  turn saying the answer contains an error; up to ``rounds`` times while the revision is still wrong.
- ``ptr`` (Progressive Thought Refinement, Du et al. 2024): a standard answer, then ``rounds`` turns of PTR's
  refinement instruction ("think further and give a more precise answer"), each reply replacing the answer;
  no early stop and no outside signal, the last reply is scored, every turn's tokens count; a turn whose
  answer is unchanged is named ``feedback``, not ``revision``
  (:mod:`pasr.baselines.ptr` trains a model for it).
- ``score`` (SCoRe, Kumar et al. 2024): a standard answer, then ``rounds`` turns of SCoRe's self-correction
  instruction ("There might be an error in the solution above ... correct the error, if any"), like ``ptr``:
  each reply replaces the answer, the last is scored, every turn's tokens count. ``--rounds 1`` is the paper's
  two attempts (:mod:`pasr.baselines.score` trains a model for it).
- ``rise-oracle`` (RISE, Qu et al. 2024, with an oracle): a standard answer; an answer the scorer marks wrong
  gets RISE's feedback "The answer is incorrect. Please try again." and another turn, up to ``rounds`` times,
  stopping once right (the paper's oracle-stop reading).
- ``rise`` (RISE without an oracle): a standard answer, then ``rounds`` turns of the same feedback whatever
  the answer; the scored answer is the majority over all turns' stated answers (numbers by value, a turn without
  an answer does not vote, a tie goes to the latest of the tied answers), the paper's reading without an oracle (:mod:`pasr.baselines.rise` trains a model for both).

Turn names in results: ``answer`` (first turn), ``revision`` (a turn whose reply replaced the answer),
``feedback`` (a self-refine turn in which the model confirmed its answer, or a ptr / score / rise turn that kept
the answer).

Progress: each method tells ``cfg.progress`` (:class:`pasr.eval.progress.ChainProgress`) which turn runs
and when examples finish, and hands it to the backend as ``on_progress`` so the bar moves per finished
conversation (a backend whose ``generate`` takes no ``on_progress`` is reported once its call returns).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pasr.data.records import Record
from pasr.eval.progress import NO_PROGRESS, ChainProgress
from pasr.prompts import (
    PASR_SYSTEM_PROMPT,
    PTR_REFINE_INSTRUCTION,
    RISE_FEEDBACK,
    SCORE_CORRECTION_INSTRUCTION,
    SELF_REFINE_CONFIRMATION,
    SELF_REFINE_FEEDBACK,
    SELF_REFINE_ORACLE_FEEDBACK,
    STANDARD_SYSTEM_PROMPT,
    chat,
)

METHODS = ("vanilla", "pasr", "self-refine", "self-refine-oracle", "ptr", "score", "rise", "rise-oracle")

ScoreFn = Callable[[Sequence[Record], Sequence[str]], list[float]]
"""Scores texts against their records' references (in order), values in [0, 1]."""

WRONG_BELOW = {"accuracy": 1.0, "f1": 0.5, "rouge_l": 0.5}
"""Self-Refine+ revises an answer whose score is below this, by the benchmark family's metric:
anything short of full marks for accuracy families; below 0.5 for token-overlap metrics (F1, ROUGE-L),
where full marks are rare even for good answers (the same cut that counts an answer "right" in the
transition analysis)."""


@dataclass
class Outcome:
    """One example's chain: every turn, the text to score and (when the chain already knows it) its score."""

    turns: list[dict[str, Any]] = field(default_factory=list)
    final: str = ""
    score: float | None = None

    @property
    def tokens(self) -> int:
        return sum(int(t["tokens"]) for t in self.turns)

    @property
    def revisions(self) -> int:
        return sum(1 for t in self.turns if t["name"] == "revision")


@dataclass
class ChainConfig:
    """What every chain needs besides the records: where to generate, how, and how to score."""

    backend: Any
    max_tokens: int = 1500
    temperature: float = 0.0
    rounds: int = 1
    score: ScoreFn | None = None
    metric_of: Callable[[str], str] = lambda task: "accuracy"
    progress: ChainProgress = NO_PROGRESS


_CONFIRM = re.compile(r"\s+".join(map(re.escape, SELF_REFINE_CONFIRMATION.lower().split())))


def confirms(reply: str) -> bool:
    """True when a self-refine reply keeps the previous answer (says the confirmation phrase)."""
    return bool(_CONFIRM.search((reply or "").lower()))


def answer_key(text: str) -> str:
    """What the scorers read as ``text``'s answer (its last ``<answer>``, else the whole text), blanks collapsed."""
    from pasr.scoring.extract import answer_text

    return " ".join(answer_text(text)[0].split())


def changes_answer(previous: str, reply: str) -> bool:
    """Whether ``reply``'s answer (:func:`answer_key`) differs from ``previous``'s: a PTR round that keeps the
    answer is no revision."""
    return answer_key(previous) != answer_key(reply)


def is_wrong(score: float, metric: str) -> bool:
    """Whether Self-Refine+ should send its error hint for an answer with this score."""
    return score < WRONG_BELOW.get(metric, 1.0)


def takes_progress(generate: Callable) -> bool:
    """Whether a backend's ``generate`` accepts ``on_progress`` (the built-in ones do; a custom one may not)."""
    try:
        params = inspect.signature(generate).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "on_progress" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _generate(
    cfg: ChainConfig, conversations: list[list[dict[str, str]]], turn: str, *, final: bool
) -> list[tuple[str, int]]:
    """One turn over ``conversations``; ``final``: a conversation that finishes here ends its example."""
    if not conversations:
        return []
    cfg.progress.turn(turn, len(conversations), final=final)
    if takes_progress(cfg.backend.generate):
        out = cfg.backend.generate(conversations, cfg.max_tokens, cfg.temperature, on_progress=cfg.progress.generated)
    else:
        out = cfg.backend.generate(conversations, cfg.max_tokens, cfg.temperature)
        cfg.progress.generated(len(out), sum(int(n) for _, n in out))
    if len(out) != len(conversations):
        raise RuntimeError(f"backend returned {len(out)} completions for {len(conversations)} conversations")
    return out


def _first_answers(records: Sequence[Record], system: str, cfg: ChainConfig, *, final: bool):
    """Run the first turn for all records: (conversations so far, outcomes)."""
    convs = [chat(system, r.question, r.task) for r in records]
    outcomes = []
    for conv, (text, n) in zip(convs, _generate(cfg, convs, "answer", final=final)):
        outcomes.append(Outcome(turns=[_turn("answer", conv[-1]["content"], text, n)], final=text))
        conv.append({"role": "assistant", "content": text})
    return convs, outcomes


def _turn(name: str, prompt: str, text: str, tokens: int) -> dict[str, Any]:
    return {"name": name, "prompt": prompt, "text": text, "tokens": int(tokens)}


def vanilla(records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """Standard prompt, one answer."""
    return _first_answers(records, STANDARD_SYSTEM_PROMPT, cfg, final=True)[1]


def pasr(records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """PASR prompt, one answer: refinement, if any, happens inside the answer."""
    return _first_answers(records, PASR_SYSTEM_PROMPT, cfg, final=True)[1]


def self_refine(records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """Answer, then review rounds until the model confirms its answer or ``rounds`` run out."""
    rounds = max(0, cfg.rounds)
    convs, outcomes = _first_answers(records, STANDARD_SYSTEM_PROMPT, cfg, final=rounds == 0)
    open_ = list(range(len(records)))
    for k in range(1, rounds + 1):
        if not open_:
            break
        asks = [convs[i] + [{"role": "user", "content": SELF_REFINE_FEEDBACK}] for i in open_]
        still_open = []
        replies = _generate(cfg, asks, f"review {k}", final=k == rounds)
        for i, ask, (text, n) in zip(open_, asks, replies):
            if confirms(text):
                outcomes[i].turns.append(_turn("feedback", SELF_REFINE_FEEDBACK, text, n))
                continue  # the answer under review stays the final one
            outcomes[i].turns.append(_turn("revision", SELF_REFINE_FEEDBACK, text, n))
            outcomes[i].final = text
            convs[i] = ask + [{"role": "assistant", "content": text}]
            still_open.append(i)
        if k < rounds:
            cfg.progress.examples_done(len(open_) - len(still_open))  # confirmed: their chain ends here
        open_ = still_open
    cfg.progress.end()
    return outcomes


def self_refine_oracle(records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """Answer; answers the scorer marks wrong get an error hint and a revision (``rounds`` times at most)."""
    return _oracle_chain(records, cfg, SELF_REFINE_ORACLE_FEEDBACK, "self-refine-oracle", "revision")


def rise_oracle(records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """RISE with an oracle: answers the scorer marks wrong get RISE's feedback and another turn, until right or
    ``rounds`` turns have run (accuracy = right within ``rounds + 1`` turns, the paper's oracle-stop reading). A
    retry is a ``revision`` only when its answer changed (:func:`changes_answer`), as in ``rise``."""
    return _oracle_chain(records, cfg, RISE_FEEDBACK, "rise-oracle", "retry", by_change=True)


def _oracle_chain(records: Sequence[Record], cfg: ChainConfig, feedback: str, method: str, label: str, *,
                  by_change: bool = False) -> list[Outcome]:
    """A standard answer; while the scorer marks it wrong, ``feedback`` and a revision (``rounds`` times at most).
    Every turn keeps the score the chain read it by (``turn["score"]``). ``by_change``: a turn is a ``revision``
    only when its answer changed, else ``feedback`` (Self-Refine+ names every turn after its hint a revision);
    ``label`` names the turns in progress bars."""
    if cfg.score is None:
        raise ValueError(f"{method} needs a scorer")
    rounds = max(0, cfg.rounds)
    convs, outcomes = _first_answers(records, STANDARD_SYSTEM_PROMPT, cfg, final=rounds == 0)
    scores = cfg.score(records, [o.final for o in outcomes])
    for o, s in zip(outcomes, scores):
        o.score = o.turns[-1]["score"] = float(s)
    open_ = [i for i, r in enumerate(records) if is_wrong(outcomes[i].score, cfg.metric_of(r.task))]
    if rounds:
        cfg.progress.examples_done(len(records) - len(open_))  # right at once: no revision
    for k in range(1, rounds + 1):
        if not open_:
            break
        asks = [convs[i] + [{"role": "user", "content": feedback}] for i in open_]
        replies = _generate(cfg, asks, f"{label} {k}", final=k == rounds)
        for i, ask, (text, n) in zip(open_, asks, replies):
            name = "revision" if not by_change or changes_answer(outcomes[i].final, text) else "feedback"
            outcomes[i].turns.append(_turn(name, feedback, text, n))
            outcomes[i].final = text
            convs[i] = ask + [{"role": "assistant", "content": text}]
        new = cfg.score([records[i] for i in open_], [outcomes[i].final for i in open_])
        for i, s in zip(open_, new):
            outcomes[i].score = outcomes[i].turns[-1]["score"] = float(s)
        still_open = [i for i in open_ if is_wrong(outcomes[i].score, cfg.metric_of(records[i].task))]
        if k < rounds:
            cfg.progress.examples_done(len(open_) - len(still_open))  # right now: their chain ends here
        open_ = still_open
    cfg.progress.end()
    return outcomes


def ptr(records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """Answer, then ``rounds`` refinement turns (PTR's instruction); each reply becomes the answer, the last is scored.

    Turn ``k`` of an outcome holds the answer after ``k`` refinements (turn 0: the first answer), so the
    accuracy after every round can be read from one chain (:func:`pasr.baselines.heldout.heldout_rounds`). A round's
    turn is named ``revision`` only when its answer differs from the previous one (:func:`changes_answer`), else
    ``feedback`` (the model kept its answer), so refine rates and analyses count real revisions only.
    """
    return _instructed_rounds(records, cfg, PTR_REFINE_INSTRUCTION, "refine")


def score(records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """SCoRe's attempts: answer, then ``rounds`` turns of its self-correction instruction (``rounds=1``: the
    paper's two attempts); each reply becomes the answer, the last is scored; turns named as in :func:`ptr`."""
    return _instructed_rounds(records, cfg, SCORE_CORRECTION_INSTRUCTION, "attempt")


def rise(records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """RISE without an oracle: answer, then ``rounds`` turns of RISE's feedback whatever the answer; the scored
    text is the turn whose answer the most turns gave (:func:`majority_turn`); turns named as in :func:`ptr`."""
    outcomes = _instructed_rounds(records, cfg, RISE_FEEDBACK, "retry")
    for outcome in outcomes:
        outcome.final = outcome.turns[majority_turn([t["text"] for t in outcome.turns])]["text"]
    return outcomes


def majority_turn(texts: Sequence[str]) -> int:
    """Index of the text whose answer (:func:`vote_key`) the most texts give; a tie goes to the latest of the tied
    answers' last occurrences. Texts that state no answer do not vote; when none does, the last text.
    ``texts`` must not be empty (IndexError otherwise)."""
    if not texts:
        raise IndexError("majority_turn of no texts")
    keys = [vote_key(t) for t in texts]
    counts: dict[str, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return len(texts) - 1
    best = max(counts.values())
    return max(i for i, key in enumerate(keys) if key is not None and counts[key] == best)


def vote_key(text: str) -> str | None:
    """What majority voting compares of a reply: the value of its ``<answer>`` when that is a number (``5``,
    ``5.0`` and ``$5`` agree), else that answer's text, blanks collapsed; for a reply without ``<answer>``, the
    number it commits to as the numeric scorers read it. None (no vote) for a reply that states no answer: an
    empty ``<answer>``, or no tag and no committed number."""
    from pasr.scoring.extract import answer_text
    from pasr.scoring.numeric import answer_number, plain_number

    text, tagged = answer_text(text)
    key = " ".join(text.split())
    if not key:
        return None
    if not tagged:  # an untagged reply votes with the number it commits to, if any
        number = answer_number(text)
        return None if number is None else f"= {number.value}"
    value = plain_number(key)
    return f"= {value}" if value is not None else key


def _instructed_rounds(records: Sequence[Record], cfg: ChainConfig, instruction: str, label: str) -> list[Outcome]:
    """A standard answer, then ``rounds`` turns of ``instruction``, each reply replacing the answer (no early stop)."""
    rounds = max(0, cfg.rounds)
    convs, outcomes = _first_answers(records, STANDARD_SYSTEM_PROMPT, cfg, final=rounds == 0)
    for k in range(1, rounds + 1):
        asks = [conv + [{"role": "user", "content": instruction}] for conv in convs]
        replies = _generate(cfg, asks, f"{label} {k}", final=k == rounds)
        for i, (ask, (text, n)) in enumerate(zip(asks, replies)):
            name = "revision" if changes_answer(outcomes[i].final, text) else "feedback"
            outcomes[i].turns.append(_turn(name, instruction, text, n))
            outcomes[i].final = text
            convs[i] = ask + [{"role": "assistant", "content": text}]
    cfg.progress.end()
    return outcomes


CHAINS: dict[str, Callable[[Sequence[Record], ChainConfig], list[Outcome]]] = {
    "vanilla": vanilla,
    "pasr": pasr,
    "self-refine": self_refine,
    "self-refine-oracle": self_refine_oracle,
    "ptr": ptr,
    "score": score,
    "rise": rise,
    "rise-oracle": rise_oracle,
}


def run_method(method: str, records: Sequence[Record], cfg: ChainConfig) -> list[Outcome]:
    """Run ``method`` over ``records`` (one outcome per record, in order)."""
    return CHAINS[method](records, cfg)
