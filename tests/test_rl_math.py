"""Advantages and losses against hand-computed values."""

import math

import pytest
import torch

from rlcs.rl.advantages import group_advantages, zero_variance_mask
from rlcs.rl.loss import aggregate, clipped_policy_loss, entropy_from_logits, kl_k3


def test_group_advantages_normalise_within_each_group():
    rewards = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0, ], [0.0, 3.0]])
    # group 1: mean .5, population std .5 -> -1, +1; groups 2-3: zero variance -> 0; group 4: mean 1.5, std 1.5
    expected = torch.tensor([[-1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])
    assert torch.allclose(group_advantages(rewards), expected)
    assert zero_variance_mask(rewards).tolist() == [False, True, True, False]


def test_group_advantages_without_std_scaling_is_dr_grpo():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 3.0]])
    expected = torch.tensor([[-0.5, -0.5, 0.5, 0.5], [-0.75, -0.75, -0.75, 2.25]])
    assert torch.allclose(group_advantages(rewards, scale_by_std=False), expected)


def test_group_of_three_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.0]])
    mean, std = 1 / 3, math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 3)
    expected = torch.tensor([[(1 - mean) / std, -mean / std, -mean / std]])
    assert torch.allclose(group_advantages(rewards), expected)


def _loss(ratio, adv, **kw):
    """One token per completion: logp_old = 0, logp = log(ratio)."""
    logp = torch.log(torch.tensor(ratio)).unsqueeze(1)
    old = torch.zeros_like(logp)
    mask = torch.ones_like(logp)
    return clipped_policy_loss(logp, old, torch.tensor(adv), mask, **kw)


def test_clip_higher_is_asymmetric():
    # A > 0: ratio capped at 1 + eps_high = 1.28 (not 1.2); A < 0: floor at 1 - eps_low = 0.8
    loss, stats = _loss([1.5], [1.0])
    assert loss.item() == pytest.approx(-1.28)
    assert stats.clip_frac_high == 1.0 and stats.clip_frac_low == 0.0
    loss, stats = _loss([0.5], [-1.0])
    assert loss.item() == pytest.approx(0.8)  # -min(0.5*-1, 0.8*-1) = 0.8
    assert stats.clip_frac_low == 1.0
    loss, _ = _loss([1.25], [1.0])  # inside (0.8, 1.28): unclipped
    assert loss.item() == pytest.approx(-1.25)


def test_clip_does_not_help_on_the_pessimistic_side():
    # A > 0 and ratio < 1 - eps_low: min() keeps the unclipped (smaller) objective
    loss, stats = _loss([0.5], [1.0])
    assert loss.item() == pytest.approx(-0.5)
    assert stats.clip_frac_low == 0.0 and stats.clip_frac_high == 0.0


def test_dual_clip_bounds_large_ratios_on_negative_advantages():
    loss, _ = _loss([10.0], [-1.0])
    assert loss.item() == pytest.approx(10.0)
    loss, _ = _loss([10.0], [-1.0], dual_clip=3.0)
    assert loss.item() == pytest.approx(3.0)


def test_gradient_flows_only_through_unclipped_tokens():
    logp = torch.log(torch.tensor([[1.5, 1.0]])).requires_grad_()
    loss, _ = clipped_policy_loss(logp, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2), aggregation="token")
    loss.backward()
    # token 1 is clipped (no gradient); token 2 has d(-r*A)/dlogp = -r*A/2 = -0.5 under the token mean
    assert logp.grad.tolist() == [[0.0, pytest.approx(-0.5)]]


def test_aggregation_modes_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert aggregate(per_token, mask, "per_sample").item() == pytest.approx((2.0 + 4.0) / 2)
    assert aggregate(per_token, mask, "token").item() == pytest.approx(10.0 / 4)
    assert aggregate(per_token, mask, "seq_sum_norm", max_tokens=4).item() == pytest.approx((6 / 4 + 4 / 4) / 2)
    with pytest.raises(ValueError, match="max_tokens"):
        aggregate(per_token, mask, "seq_sum_norm")


def test_zero_advantage_groups_give_zero_loss_and_gradient():
    logp = torch.randn(4, 3).requires_grad_()
    loss, _ = clipped_policy_loss(logp, logp.detach() + 0.1, torch.zeros(4), torch.ones(4, 3))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(logp.grad) == 0


def test_approx_kl_is_zero_on_policy_and_k3_by_hand():
    logp = torch.tensor([[-1.0, -2.0]])
    _, stats = clipped_policy_loss(logp, logp.clone(), torch.tensor([1.0]), torch.ones(1, 2))
    assert stats.approx_kl == 0.0
    # k3 with ref - logp = log 2: 2 - log 2 - 1
    value = kl_k3(torch.tensor([0.0]), torch.tensor([math.log(2)]))
    assert value.item() == pytest.approx(1 - math.log(2))


def test_entropy_of_uniform_and_peaked_distributions():
    uniform = torch.zeros(1, 4)
    assert entropy_from_logits(uniform).item() == pytest.approx(math.log(4))
    peaked = torch.tensor([[100.0, 0.0, 0.0, 0.0]])
    assert entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-6)


def test_token_logprobs_are_taken_at_the_sampling_temperature():
    """The gradient must be for the distribution the rollout sampled from: softmax(logits / T)."""
    from types import SimpleNamespace

    from rlcs.rl.policy import RolloutBatch, token_logprobs

    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0]]])
    model = lambda **_: SimpleNamespace(logits=logits)  # noqa: E731
    batch = RolloutBatch(torch.tensor([[0, 1, 2]]), torch.ones(1, 3), torch.ones(1, 2), torch.zeros(1))
    for temperature in (1.0, 0.5):
        logp, _ = token_logprobs(model, batch, temperature=temperature)
        expected = torch.log_softmax(logits[0, :2] / temperature, dim=-1)[[0, 1], [1, 2]]
        assert torch.allclose(logp[0], expected)
    assert not torch.allclose(token_logprobs(model, batch, temperature=0.5)[0], token_logprobs(model, batch)[0])
