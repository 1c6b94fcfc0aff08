"""`pasr train` logs judge-vs-rule agreement on its rollouts (a metric; the reward stays the configured scorer's)."""

from __future__ import annotations

import pytest

from pasr.errors import PasrError
from pasr.judge import Verdict
from pasr.scoring import Scorer
from pasr.train.reward_functions import PasrRewards
from pasr.train.rollout_log import RolloutLog, read_rollouts


class ListJudge:
    """A judge whose verdicts are given in order, one per item asked (``None`` = never answered)."""

    def __init__(self, scores):
        self.scores = list(scores)
        self.asked: list[dict] = []
        self.failures = 0

    def verdicts(self, items):
        self.asked.extend(items)
        out = []
        for _ in items:
            value = self.scores.pop(0)
            out.append(Verdict(value, "scored" if value is not None else "unavailable"))
        return out


TEXTS = [f"<think>t</think><answer>{v}</answer>" for v in ("1", "2", "1", "2")]  # the reference is 1: R W R W


def run_batch(tmp_path, scorer, judge_agreement=False):
    log = RolloutLog(tmp_path / "rollouts.jsonl")
    rewards = PasrRewards(scorer, mode="none", rollout_log=log, judge_agreement=judge_agreement)
    metrics: dict[str, float] = {}
    completions = [[{"role": "assistant", "content": t}] for t in TEXTS]
    kwargs = dict(question=["q"] * 4, reference=["1"] * 4, task=["arith"] * 4, log_metric=metrics.__setitem__)
    rewards.format_reward(prompts=[None] * 4, completions=completions, **kwargs)
    accuracy = rewards.accuracy_reward(prompts=[None] * 4, completions=completions, **kwargs)
    return accuracy, metrics, read_rollouts(log.path)


@pytest.mark.parametrize(
    "judge_scores, agree, right_wrong, wrong_right",
    [
        ([1.0, 0.0, 1.0, 0.0], 1.0, 0.0, 0.0),
        ([1.0, 1.0, 1.0, 0.0], 0.75, 0.25, 0.0),  # lenient on the second
        ([0.0, 0.0, 1.0, 1.0], 0.5, 0.25, 0.25),
    ],
)
def test_judge_all_logs_agreement_and_keeps_the_judges_reward(tmp_path, judge_scores, agree, right_wrong, wrong_right):
    with Scorer(judge=ListJudge(judge_scores), judge_all=True) as scorer:
        accuracy, metrics, rows = run_batch(tmp_path, scorer)
    assert accuracy == judge_scores  # the reward is the judge's, as without the metric
    assert metrics["judge/agreement"] == pytest.approx(agree)
    assert metrics["judge/judge_right_rule_wrong"] == pytest.approx(right_wrong)
    assert metrics["judge/judge_wrong_rule_right"] == pytest.approx(wrong_right)
    assert [r["scores"] for r in rows] == [{"rule": r, "judge": j} for r, j in zip([1.0, 0.0, 1.0, 0.0], judge_scores)]
    if agree == 1.0:
        assert metrics["judge/kappa"] == pytest.approx(1.0)


def test_judge_agreement_asks_the_judge_but_the_rule_stays_the_reward(tmp_path):
    judge = ListJudge([1.0, 1.0, None, 0.0])
    with Scorer(judge=judge) as scorer:
        accuracy, metrics, rows = run_batch(tmp_path, scorer, judge_agreement=True)
    assert accuracy == [1.0, 0.0, 1.0, 0.0]  # the rule's, untouched by the judge
    assert len(judge.asked) == 4
    assert metrics["judge/agreement"] == pytest.approx(2 / 3)  # the unanswered one is left out
    assert rows[2]["scores"] == {"rule": 1.0, "judge": None}


def test_without_the_option_the_judge_is_not_asked_and_nothing_is_logged(tmp_path):
    judge = ListJudge([])
    with Scorer(judge=judge) as scorer:
        accuracy, metrics, rows = run_batch(tmp_path, scorer)
    assert accuracy == [1.0, 0.0, 1.0, 0.0] and judge.asked == []
    assert not any(k.startswith("judge/agree") or k == "judge/kappa" for k in metrics)
    assert all("scores" not in r for r in rows)


def test_judge_agreement_needs_a_judge():
    from pasr.train.checks import check_values

    with pytest.raises(PasrError, match="judge_agreement"):
        check_values({"judge_agreement": True})
