"""The refine reward's rule at each boundary, its ablation modes, and the weighted total."""

from __future__ import annotations

import dataclasses

import pytest

from pasr.errors import PasrError
from pasr.rewards import REFINE_MODES, RewardWeights, refine_reward, total_reward


def test_not_refined_gives_zero_in_every_mode():
    for mode in REFINE_MODES:
        assert refine_reward(1.0, [0.0, 0.0], refined=False, mode=mode) == 0.0
        assert refine_reward(0.0, [1.0], refined=False, zeta=0.2, mode=mode) == 0.0


def test_not_refined_needs_no_baseline():
    assert refine_reward(1.0, [], refined=False) == 0.0
    assert refine_reward(1.0, [], refined=False, mode="single") == 0.0


@pytest.mark.parametrize(
    ("acc", "baseline", "expected"),
    [
        (1.0, [0.0, 1.0, 0.0, 0.0], 1.0),  # b = 0.25: refined beats the standard samples
        (0.0, [0.0, 1.0, 0.0, 0.0], -1.0),  # refined is worse
        (0.25, [0.0, 1.0, 0.0, 0.0], -0.5),  # tie at zeta = 0: the reference code's -0.5
        (1.0, [1.0, 1.0], -0.5),  # all standard samples already right
        (0.0, [0.0, 0.0], -0.5),  # all wrong, refinement did not help
        (0.6, [0.5], 1.0),
        (0.4, [0.5], -1.0),
    ],
)
def test_comparison_rule(acc, baseline, expected):
    assert refine_reward(acc, baseline, refined=True) == expected


def test_comparison_uses_the_mean_of_the_baseline():
    # mean 0.5: 0.6 beats it although it is below the best sample and above the worst
    assert refine_reward(0.6, [0.0, 1.0], refined=True) == 1.0
    assert refine_reward(0.4, [0.0, 1.0], refined=True) == -1.0


def test_zeta_boundaries_are_strict():
    b, zeta = 0.5, 0.25  # exact in binary, so b +- zeta is exact
    baseline = [0.25, 0.75]
    assert refine_reward(b + zeta, baseline, refined=True, zeta=zeta) == -0.5  # not > b + zeta
    assert refine_reward(b - zeta, baseline, refined=True, zeta=zeta) == -0.5  # not < b - zeta
    assert refine_reward(b + zeta + 1e-5, baseline, refined=True, zeta=zeta) == 1.0
    assert refine_reward(b - zeta - 1e-5, baseline, refined=True, zeta=zeta) == -1.0
    assert refine_reward(b + 0.1, baseline, refined=True, zeta=zeta) == -0.5  # inside the band
    assert refine_reward(b - 0.1, baseline, refined=True, zeta=zeta) == -0.5


def test_single_mode_compares_with_the_first_sample_only():
    # the mean (0.5) and the first sample (0.0 or 1.0) disagree: the result follows the first
    assert refine_reward(0.5, [0.0, 1.0], refined=True, mode="single") == 1.0
    assert refine_reward(0.5, [1.0, 0.0], refined=True, mode="single") == -1.0
    assert refine_reward(1.0, [1.0, 0.0, 0.0], refined=True, mode="single") == -0.5
    assert refine_reward(0.5, [0.0, 1.0], refined=True, mode="comparison") == -0.5
    assert refine_reward(0.3, [0.5], refined=True, zeta=0.25, mode="single") == -0.5


def test_trigger_mode_rewards_any_refinement_and_ignores_baseline():
    assert refine_reward(0.0, [1.0, 1.0], refined=True, mode="trigger") == 1.0
    assert refine_reward(0.0, [], refined=True, mode="trigger") == 1.0
    assert refine_reward(1.0, [], refined=False, mode="trigger") == 0.0


def test_unknown_mode_lists_known_modes():
    with pytest.raises(ValueError, match="comparison, single, trigger") as err:
        refine_reward(1.0, [0.0], refined=True, mode="compare")
    assert isinstance(err.value, PasrError)
    with pytest.raises(ValueError, match="unknown refine reward mode 'x'"):
        refine_reward(1.0, [0.0], refined=False, mode="x")


@pytest.mark.parametrize("mode", ["comparison", "single"])
def test_empty_baseline_raises_when_refined(mode):
    with pytest.raises(ValueError, match="baseline is empty"):
        refine_reward(1.0, [], refined=True, mode=mode)


@pytest.mark.parametrize("zeta", [-0.1, float("nan")])
def test_bad_zeta_raises(zeta):
    with pytest.raises(ValueError, match="zeta must be a number >= 0"):
        refine_reward(1.0, [0.0], refined=True, zeta=zeta)


def test_nan_accuracy_raises():
    with pytest.raises(ValueError, match="NaN"):
        refine_reward(float("nan"), [0.0], refined=True)
    with pytest.raises(ValueError, match="NaN"):
        refine_reward(1.0, [0.0, float("nan")], refined=True)


def test_accepts_ints_and_tuples():
    assert refine_reward(1, (0, 0, 1), refined=True) == 1.0


def test_total_reward_default_weights_sum_terms():
    assert total_reward(1.0, 0.5, -0.5) == 1.0
    assert total_reward(-1.0, 0.0, 0.0) == -1.0


def test_total_reward_applies_each_weight_to_its_term():
    w = RewardWeights(format=2.0, accuracy=3.0, refine=5.0)
    assert total_reward(1.0, 0.0, 0.0, w) == 2.0
    assert total_reward(0.0, 1.0, 0.0, w) == 3.0
    assert total_reward(0.0, 0.0, 1.0, w) == 5.0
    assert total_reward(-1.0, 0.5, -0.5, w) == pytest.approx(-2.0 + 1.5 - 2.5)
    assert total_reward(1.0, 1.0, 1.0, RewardWeights(refine=0.0)) == 2.0


def test_reward_weights_defaults_and_immutability():
    w = RewardWeights()
    assert (w.format, w.accuracy, w.refine) == (1.0, 1.0, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.refine = 0.0  # type: ignore[misc]
