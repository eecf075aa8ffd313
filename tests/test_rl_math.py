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


def test_rewards_that_differ_only_by_float_noise_carry_no_signal():
    noise = torch.tensor([[0.5] * 7 + [0.5 + 1e-5], [0.0] * 7 + [1e-3], [50.0] * 7 + [50.001]])
    # group 1: float noise at scale 1; group 3: 1e-3 at scale 50 is noise too; group 2: a real partial credit
    assert zero_variance_mask(noise).tolist() == [True, False, True]
    advantages = group_advantages(noise)
    assert (advantages[0] == 0).all() and (advantages[2] == 0).all()
    assert advantages[1, -1].item() == pytest.approx(math.sqrt(7))  # one of eight above the rest


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


def test_token_aggregation_is_the_token_mean_of_the_whole_batch_across_micro_batches(micro_model_dir):
    """DAPO's token mean: with two micro-batches of very different lengths, the update must equal the
    gradient of (sum of all token losses) / (all tokens), not the mean of the two micro-batch means."""
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM

    from rlcs.config import PolicyConfig
    from rlcs.engine import Completion
    from rlcs.rl.policy import build_batch, policy_update, token_logprobs

    torch.manual_seed(0)
    completions = [Completion(0, prompt, tokens, [1] * len(tokens)) for prompt, tokens in
                   [([5, 6, 7], [8]), ([5, 6, 7], [9]), ([5, 6], list(range(10, 22))), ([5, 6], list(range(30, 40)))]]
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5])
    batch = build_batch(completions, advantages, pad_id=0, device=torch.device("cpu"))

    reference = AutoModelForCausalLM.from_pretrained(micro_model_dir).float()
    logp, _ = token_logprobs(reference, batch)
    expected_loss, _ = clipped_policy_loss(logp, logp.detach(), batch.advantages, batch.loss_mask, aggregation="token")
    expected_loss.backward()
    expected = {name: p.grad.clone() for name, p in reference.named_parameters() if p.grad is not None}

    accelerator = Accelerator(cpu=True)
    accelerator.gradient_accumulation_steps = 2
    model = AutoModelForCausalLM.from_pretrained(micro_model_dir).float()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model, optimizer = accelerator.prepare(model, torch.optim.SGD(model.parameters(), lr=1.0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    config = PolicyConfig(aggregation="token")
    policy_update(accelerator, model, optimizer, scheduler, batch, config, micro_batch_size=2, max_new_tokens=16,
                  max_grad_norm=1e9, generator=torch.Generator().manual_seed(0))
    # Plain SGD with lr 1: the parameter change is minus the accumulated gradient. The shuffled order
    # puts the micro-batches together in any order; the token mean does not depend on it.
    for name, param in accelerator.unwrap_model(model).named_parameters():
        if name in expected:
            assert torch.allclose(before[name] - param.detach(), expected[name], atol=1e-6), name


def test_gradient_checkpointing_gives_the_same_loss_and_gradients_and_keeps_fewer_activations(micro_model_dir):
    """``model.gradient_checkpointing: true`` (every stage loads its model through ``load_model``): the
    same loss and gradients, and far fewer bytes kept for the backward pass (activation memory)."""
    from rlcs.config import ModelConfig
    from rlcs.runtime import load_model

    ids = torch.randint(5, 300, (2, 64), generator=torch.Generator().manual_seed(0))

    def loss_grads_and_saved_bytes(checkpointing: bool):
        model = load_model(ModelConfig(path=str(micro_model_dir), gradient_checkpointing=checkpointing)).train()
        saved = []

        def pack(tensor):
            saved.append(tensor.numel() * tensor.element_size())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        return loss.item(), {n: p.grad for n, p in model.named_parameters()}, sum(saved)

    plain_loss, plain_grads, plain_bytes = loss_grads_and_saved_bytes(False)
    ckpt_loss, ckpt_grads, ckpt_bytes = loss_grads_and_saved_bytes(True)
    assert ckpt_loss == pytest.approx(plain_loss, rel=1e-6)
    assert all(g is not None for g in ckpt_grads.values())
    assert all(torch.allclose(plain_grads[n], ckpt_grads[n], atol=1e-6) for n in plain_grads)
    assert ckpt_bytes < 0.6 * plain_bytes, (ckpt_bytes, plain_bytes)


def test_token_logprobs_ask_only_for_completion_logits_and_match_a_full_log_softmax(micro_model_dir):
    from transformers import AutoModelForCausalLM

    from rlcs.engine import Completion
    from rlcs.rl.policy import build_batch, token_logprobs

    model = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    completions = [Completion(0, list(range(5, 25)), [30, 31, 32], [1, 1, 1]),
                   Completion(0, list(range(5, 23)), [40, 41, 42, 43, 44], [1, 0, 0, 1, 1])]
    batch = build_batch(completions, torch.zeros(2), pad_id=0, device=torch.device("cpu"))
    shapes = []
    model.register_forward_hook(lambda module, args, output: shapes.append(tuple(output.logits.shape)))
    logp, entropy = token_logprobs(model, batch, with_entropy=True, temperature=0.7)

    width = batch.input_ids.shape[1]
    assert shapes[0][1] == width - 17  # from the first predicting position (row 2: prompt of 18, index 17) on
    with torch.no_grad():
        full = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1] / 0.7
    expected = torch.log_softmax(full, -1).gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
    mask = batch.loss_mask.bool()
    assert torch.allclose(logp[mask], expected[mask], atol=1e-5)
    assert torch.allclose(entropy[mask], entropy_from_logits(full)[mask], atol=1e-5)
    # exactly zero wherever no completion token is predicted (row 1's prompt, row 2's masked tokens)
    assert (logp[~mask] == 0).all() and (entropy[~mask] == 0).all()


def test_engine_logprobs_line_up_with_the_loss_mask_and_their_gap_is_absolute():
    """The engine's per-token log-probabilities sit where their tokens are predicted (like the loss mask);
    inserted tokens (NaN) and prompt positions do not count in the training-inference gap."""
    from rlcs.engine import Completion
    from rlcs.rl.policy import _engine_gaps, build_batch

    nan = math.nan
    sampled = Completion(0, [5, 6], [7, 8], [1, 1], logprobs=[-0.5, -1.0])
    forced = Completion(0, [5], [9, 10, 11], [1, 0, 1], logprobs=[-0.25, nan, -2.0])
    batch = build_batch([sampled, forced], torch.zeros(2), pad_id=0, device=torch.device("cpu"), engine_logprobs=True)
    # sampled: prompt of 2, so token 7 is predicted at position 1 and token 8 at position 2; width 4 → 3 positions
    assert batch.loss_mask.tolist() == [[0, 1, 1], [1, 0, 1]]
    engine = batch.engine_logprobs
    assert engine[0, 1:].tolist() == [-0.5, -1.0] and math.isnan(engine[0, 0])
    assert engine[1, 0] == -0.25 and math.isnan(engine[1, 1]) and engine[1, 2] == -2.0
    policy = torch.tensor([[0.0, -0.75, -1.0], [-0.25, -3.0, -1.5]])
    assert sorted(_engine_gaps(policy, batch).tolist()) == [0.0, 0.0, 0.25, 0.5]
    # an engine that reports nothing gives no tensor, so no gap metric
    plain = Completion(0, [5, 6], [7, 8], [1, 1])
    assert build_batch([plain], torch.zeros(1), 0, torch.device("cpu")).engine_logprobs is None
    # one that does gives a tensor even where a completion lacks them (all NaN): the same metrics everywhere
    assert torch.isnan(build_batch([plain], torch.zeros(1), 0, torch.device("cpu"), True).engine_logprobs).all()


def test_rollout_positions_follow_the_gathered_order_when_shares_are_uneven():
    """9 picks on 2 processes: 5 and 4 groups. Outcomes are gathered rank by rank, so process 1's first group
    is position 5 of the step (not 4, which belongs to process 0's last)."""
    from rlcs.engine import Completion
    from rlcs.rl import rollout

    class Engine:
        def generate(self, prompts, n, params):
            return [Completion(i, [1], [2], [1], text=p) for i, p in enumerate(prompts) for _ in range(n)]

    class Router:
        def score(self, texts, examples):
            return [0.0] * len(texts)

    picked = [{"id": f"e{i}", "domain": "d", "prompt": f"p{i}"} for i in range(9)]
    original = rollout.example_request
    rollout.example_request = lambda tokenizer, example: example["prompt"]
    try:
        shares = [rollout.rollout_round(picked, 3, Engine(), Router(), None, None, 2, rank, 2)[0] for rank in (0, 1)]
    finally:
        rollout.example_request = original
    gathered = shares[0] + shares[1]
    assert [g.position for g in gathered] == list(range(3, 12))
    assert [g.example["id"] for g in gathered] == ["e0", "e2", "e4", "e6", "e8", "e1", "e3", "e5", "e7"]
