"""Every prompt text pasr sends to a model, in one place.

Keeping them together makes it easy to see exactly what the policy, the
baselines and the judge are told, and to swap a system prompt in a recipe.
The wording is ours; the intent follows the PASR paper (arXiv 2508.12903).
"""

from __future__ import annotations

# --- system prompts -------------------------------------------------------

PASR_SYSTEM_PROMPT = (
    "You are a careful assistant that refines its own reasoning while it thinks. "
    "First reason about the question inside <think> </think>. While reasoning, whenever you "
    "notice a mistake, a missing piece of information or a better way to solve the problem, "
    "write what you reconsider and the fix inside <refine> </refine>, then continue reasoning. "
    "Refine only when it helps; <refine> may appear only inside <think>. "
    "After </think>, give only the final answer inside <answer> </answer>. "
    "Format: <think> reasoning ... <refine> correction </refine> ... reasoning </think>"
    "<answer> final answer </answer>"
)
"""System prompt for PASR rollouts (training) and the `pasr` evaluation method."""

STANDARD_SYSTEM_PROMPT = (
    "You are a helpful assistant. First reason about the question step by step inside "
    "<think> </think>, then give only the final answer inside <answer> </answer>. "
    "Format: <think> reasoning </think><answer> final answer </answer>"
)
"""Plain system prompt, no refine instructions: the standard-sample baseline and `vanilla`."""

SYSTEM_PROMPTS = {"pasr": PASR_SYSTEM_PROMPT, "standard": STANDARD_SYSTEM_PROMPT}

# --- task prompts: appended to the question, one per answer family ---------

TASK_INSTRUCTIONS = {
    "math": "Put the final answer (a number or a LaTeX expression) in <answer> </answer>.",
    "gsm8k": "Put the final answer (a number only) in <answer> </answer>.",
    "arith": "Put the final answer (a number only) in <answer> </answer>.",
    "choice": "Put only the letter of the correct option in <answer> </answer>.",
    "winogrande": "Put only the number of the correct option (1 or 2) in <answer> </answer>.",
    "drop": "Put only the short answer (a number, date or a few words) in <answer> </answer>.",
    "summary": "Write a one-sentence summary of the text and put it in <answer> </answer>.",
    "open": "Put your final answer in <answer> </answer>.",
}


def task_instruction(task: str) -> str:
    """The instruction appended to a question of answer family ``task`` (a benchmark name means its family)."""
    if task not in TASK_INSTRUCTIONS:
        from pasr.data.benchmarks import benchmark_family

        task = benchmark_family(task) or "open"
    return TASK_INSTRUCTIONS.get(task, TASK_INSTRUCTIONS["open"])


def user_message(question: str, task: str) -> str:
    """The user turn for a record: its question followed by the family's instruction."""
    return f"{question.strip()}\n\n{task_instruction(task)}"


def chat(system: str, question: str, task: str) -> list[dict[str, str]]:
    """Chat messages (system + user) for one record."""
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": user_message(question, task)},
    ]


# --- post-hoc self-refinement baselines ------------------------------------

SELF_REFINE_FEEDBACK = (
    "Review your previous answer step by step and check each step for errors. "
    'If every step is correct, reply exactly "I believe the above solution is correct." and '
    "repeat the final answer in <answer> </answer>. Otherwise, give a corrected solution and "
    "put the corrected final answer in <answer> </answer>."
)
"""Second turn of Self-Refine: the model judges its own answer without outside help."""

SELF_REFINE_CONFIRMATION = "I believe the above solution is correct"
"""Phrase by which the model keeps its previous answer in Self-Refine."""

SELF_REFINE_ORACLE_FEEDBACK = (
    "Your previous answer contains an error. Find the mistake, give a corrected solution, and "
    "put the corrected final answer in <answer> </answer>."
)
"""Revision turn of Self-Refine+ (oracle): sent only when the scorer marked the answer wrong."""

# --- LLM judge ---------------------------------------------------------------

JUDGE_SYSTEM_PROMPT = (
    "You are a strict and fair grader. You compare a model's answer with a reference answer "
    "and reply with a single score between 0 and 1. Reply with the number only."
)

JUDGE_TEMPLATES = {
    "general": (
        "Question:\n{question}\n\nReference answer:\n{reference}\n\nModel answer:\n{answer}\n\n"
        "Is the model answer correct according to the reference answer? A value or expression "
        "equivalent to the reference counts as correct. Reply 1 if it is correct, 0 if it is not. "
        "Reply with the number only."
    ),
    "choice": (
        "Question (multiple choice):\n{question}\n\nReference answer: {reference}\n\n"
        "Model answer: {answer}\n\nDoes the model answer select the same option as the reference? "
        "Reply 1 if it does, 0 if it selects another option or none. Reply with the number only."
    ),
    "summary": (
        "Text to summarise:\n{question}\n\nReference summary:\n{reference}\n\n"
        "Model summary:\n{answer}\n\nRate from 0 to 1 how closely the model summary matches the text "
        "and the reference summary in content: 0 means unrelated, 1 means the same main point without "
        "errors; use values in between for partial matches. Reply with the number only."
    ),
    "open": (
        "Question:\n{question}\n\nReference answer:\n{reference}\n\nModel answer:\n{answer}\n\n"
        "Score the model answer from 0 to 1 for correctness and completeness with respect to the "
        "reference: 1 means fully correct and equivalent, 0 means wrong or missing; use values in "
        "between for partially correct answers. Reply with the number only."
    ),
}
"""Judge prompts by kind. ``general``, ``choice`` and ``summary`` are the three kinds of the PASR
authors' evaluation (a 0/1 verdict for most benchmarks, a 0-1 similarity for XSum), in our own wording;
``open`` grades open-ended answers (the training data's task) with partial credit."""

JUDGE_KIND_OF_FAMILY = {
    "math": "general",
    "gsm8k": "general",
    "arith": "general",
    "drop": "general",
    "winogrande": "general",
    "choice": "choice",
    "summary": "summary",
    "open": "open",
}
"""The judge prompt of each answer family (training rewards with ``judge_all``, task ``open``)."""

JUDGE_KIND_OF_BENCHMARK = {
    "gsm8k": "general",
    "math500": "general",
    "aime24": "general",
    "drop": "general",
    "gpqa": "general",
    "winogrande": "general",
    "commonsenseqa": "general",
    "synthetic": "general",
    "arc": "choice",
    "mmlu": "choice",
    "xsum": "summary",
}
"""The judge prompt of each benchmark, as the PASR authors assign them (their evaluation's
``DATA_EVAL_MAPPING``: ARC and MMLU get the multiple-choice prompt, XSum the summary prompt, all
others the general one); ``pasr eval --scorer judge`` scores benchmarks by name with these."""


def judge_kind(task: str) -> str:
    """The judge prompt kind for ``task``: a benchmark name (its PASR-protocol kind) or an answer family."""
    name = str(task).strip().lower()
    kind = JUDGE_KIND_OF_BENCHMARK.get(name) or JUDGE_KIND_OF_FAMILY.get(name)
    if kind is None:
        from pasr.data.benchmarks import benchmark_family

        kind = JUDGE_KIND_OF_FAMILY.get(benchmark_family(name) or "open", "open")
    return kind


def judge_template(task: str) -> str:
    """The judge prompt template for ``task`` (:func:`judge_kind`)."""
    return JUDGE_TEMPLATES[judge_kind(task)]


# --- judge analyses of refining responses (pasr.eval.analysis; the paper's section 3.3) ---

ANALYSIS_SYSTEM_PROMPT = (
    "You are an expert reviewer of step-by-step solutions written by language models. You read a "
    "response in which the model revised its own reasoning and answer one question about it, briefly "
    "and in the requested form only."
)

TYPE_PROMPT = (
    "{context}\n\nWhat is the main purpose of the model's refinement? Choose one category:\n"
    "1. error correction: it fixes a mistake made earlier (a wrong calculation, fact or step);\n"
    "2. information complement: it adds a fact, condition or step that was missing;\n"
    "3. solution improvement: the earlier reasoning was acceptable and the refinement makes it "
    "clearer, more efficient or more rigorous;\n"
    "4. task alignment: it brings the response back to what the question asks (its goal, scope or "
    "required answer form).\n"
    "Reply with the category name only."
)

COHERENCE_PROMPT = (
    "{context}\n\nRate the coherence of the refinement from 0 to 10: 10 means it addresses something "
    "the model actually wrote before it and the reasoning after it builds on the refinement; 0 means it "
    "is unrelated to the earlier reasoning or ignored afterwards. Reply with the number only."
)

CONSISTENCY_PROMPT = (
    "{context}\n\nRate from 0 to 10 how consistent the final answer is with the reasoning that leads "
    "to it: 10 means the answer is exactly what the final reasoning concludes; 0 means the answer "
    "contradicts it or does not follow from it. Reply with the number only."
)


# --- STaR rationalisation (pasr.baselines.star) ---

STAR_HINT = "Hint: the correct answer is {answer}. Reason step by step towards it, without mentioning this hint."
"""Appended to the user turn for rationalisation (few-shot examples get their own answer as hint)."""


# --- PTR: progressive thought refinement (pasr.baselines.ptr, eval method ptr) ---

PTR_REFINE_INSTRUCTION = (
    "Please think further and give a more precise answer. Reason step by step inside <think> </think>, "
    "then put only the final answer in <answer> </answer>."
)
"""The user turn after a previous answer in PTR (Du et al., 2024): the model is asked to continue thinking and
improve that answer, without being told whether it was right. The first sentence is the issue's wording of the
paper's refinement instruction; the second keeps the answer format the scorers read."""


# --- SCoRe: two attempts, the second a self-correction (pasr.baselines.score, eval method score) ---

SCORE_CORRECTION_INSTRUCTION = (
    "There might be an error in the solution above because of lack of understanding of the question. "
    "Please correct the error, if any, and rewrite the solution. Reason step by step inside <think> </think>, "
    "then put only the final answer in <answer> </answer>."
)
"""The user turn between SCoRe's first and second attempt (Kumar et al., 2024, the MATH self-correction
instruction of their appendix); the model is not told whether the first attempt was right. The last sentence
keeps the answer format the scorers read."""


# --- RISE: recursive introspection (pasr.baselines.rise, eval methods rise and rise-oracle) ---

RISE_FEEDBACK = (
    "The answer is incorrect. Please try again. Reason step by step inside <think> </think>, "
    "then put only the final answer in <answer> </answer>."
)
"""The user turn after an answer in RISE's multi-turn rollouts (Qu et al., 2024): with the oracle it follows wrong
answers only; without it, every answer (the model is never told it was right) and the answer is read by majority
over the turns. The first two sentences are the paper's feedback; the last keeps the answer format."""
