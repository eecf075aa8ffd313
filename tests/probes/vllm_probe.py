"""The vLLM engine against the HF engine on one model, in a process of its own (a vLLM engine sets
process-wide environment and binds the process's threads, which a pytest process should not inherit).

    python tests/probes/vllm_probe.py MODEL_DIR PROMPTS_JSONL OUT_JSON

Writes the measured facts; tests/test_vllm_engine.py asserts on them:
- greedy tokens of both engines, per prompt;
- sampled completions' log-probabilities from vLLM against the HF policy's, at two temperatures;
- the same after one optimizer step: stale before ``sync_weights``, equal after;
- force answering under greedy decoding with both engines (tokens, loss masks, forced flags);
- the same request seeds sample the same tokens, other seeds other tokens;
- prompts longer than a KV-cache block: no prefix cached before a sync is reused after it.
"""

from __future__ import annotations

import json
import math
import sys

import torch

GREEDY_TOKENS = 96  # room for a micro model's short answers to finish, so stops are compared too


def policy_logprobs(model, completion, temperature: float) -> list[float]:
    """log p(token | context) under ``model`` at ``temperature`` for every token of a completion."""
    ids = torch.tensor([completion.prompt_ids + completion.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(completion.prompt_ids) - 1:-1].float() / temperature
    chosen = torch.tensor(completion.token_ids)[:, None]
    return torch.log_softmax(logits, -1).gather(1, chosen)[:, 0].tolist()


def largest_gap(model, completions, temperature: float) -> float:
    gaps = [abs(a - b) for c in completions
            for a, b, m in zip(c.logprobs, policy_logprobs(model, c, temperature), c.loss_mask) if m]
    return max(gaps)


def main(model_dir: str, prompts_path: str, out_path: str) -> None:
    from rlcs.chat import example_prompt
    from rlcs.config import ModelConfig, VLLMConfig
    from rlcs.engine import HFEngine, SamplingParams, greedy
    from rlcs.runtime import load_model, load_tokenizer
    from rlcs.vllm_engine import VLLMEngine

    torch.manual_seed(0)
    config = ModelConfig(path=model_dir)
    tokenizer, policy = load_tokenizer(config), load_model(config)
    examples = [json.loads(line) for line in open(prompts_path)][:6]
    prompts = [example_prompt(tokenizer, e) for e in examples]
    settings = VLLMConfig(max_model_len=512)
    engine = VLLMEngine(policy, tokenizer, None, config, settings, seed=0)
    hf = HFEngine(policy, tokenizer)
    facts: dict = {}

    ours, theirs = engine.generate(prompts, 1, greedy(GREEDY_TOKENS)), hf.generate(prompts, 1, greedy(GREEDY_TOKENS))
    facts["greedy_identical"] = [a.token_ids == b.token_ids for a, b in zip(ours, theirs)]
    facts["greedy_lengths"] = [len(a.token_ids) for a in ours]
    facts["greedy_tokens"] = GREEDY_TOKENS

    for temperature in (1.0, 0.7):
        sampled = engine.generate(prompts, 3, SamplingParams(max_new_tokens=40, temperature=temperature,
                                                               force_answer=False))
        facts[f"logprob_gap_t{temperature}"] = largest_gap(policy, sampled, temperature)
        facts[f"sampled_tokens_t{temperature}"] = sum(len(c.token_ids) for c in sampled)

    # Prompts longer than a KV-cache block (128 tokens on CPU): vLLM caches their prefix blocks, computed
    # with the weights of the moment, which must not outlive a sync.
    long_prompts = [example_prompt(tokenizer, {**e, "prompt": "Notes: " + " ".join(["a"] * 300) + "\n" + e["prompt"]})
                    for e in examples[:3]]
    facts["long_prompt_tokens"] = min(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in long_prompts)
    engine.generate(long_prompts, 1, greedy(8))

    # One optimizer step that moves every weight, then the engine before and after sync_weights.
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    batch = torch.tensor([sampled[0].prompt_ids + sampled[0].token_ids])
    policy(batch, labels=batch).loss.backward()
    optimizer.step()
    sampled = engine.generate(prompts, 2, SamplingParams(max_new_tokens=40, force_answer=False))
    facts["logprob_gap_before_sync"] = largest_gap(policy, sampled, 1.0)
    engine.sync_weights()
    sampled = engine.generate(prompts, 2, SamplingParams(max_new_tokens=40, force_answer=False))
    facts["logprob_gap_after_sync"] = largest_gap(policy, sampled, 1.0)
    sampled = engine.generate(long_prompts, 2, SamplingParams(max_new_tokens=16, force_answer=False))
    facts["long_prompt_gap_after_sync"] = largest_gap(policy, sampled, 1.0)
    ours, theirs = engine.generate(prompts, 1, greedy(GREEDY_TOKENS)), hf.generate(prompts, 1, greedy(GREEDY_TOKENS))
    facts["greedy_identical_after_sync"] = [a.token_ids == b.token_ids for a, b in zip(ours, theirs)]

    forcing = SamplingParams(max_new_tokens=20, answer_budget=8, temperature=0.0, force_answer=True)
    ours, theirs = engine.generate(prompts, 1, forcing), hf.generate(prompts, 1, forcing)
    facts["forced"] = [c.forced for c in ours]
    facts["forced_identical"] = [(a.token_ids, a.loss_mask, a.forced) == (b.token_ids, b.loss_mask, b.forced)
                                 for a, b in zip(ours, theirs)]
    facts["forced_logprobs_nan_exactly_at_inserted"] = all(
        (m == 0) == math.isnan(lp) for c in ours for lp, m in zip(c.logprobs, c.loss_mask))

    # Request seeds come from the run's seeded torch generator: the same seed samples the same tokens.
    draw = SamplingParams(max_new_tokens=24, force_answer=False)
    torch.manual_seed(5)
    first = [c.token_ids for c in engine.generate(prompts, 2, draw)]
    torch.manual_seed(5)
    facts["same_seed_same_tokens"] = first == [c.token_ids for c in engine.generate(prompts, 2, draw)]
    torch.manual_seed(6)
    facts["other_seed_other_tokens"] = first != [c.token_ids for c in engine.generate(prompts, 2, draw)]
    with open(out_path, "w") as handle:
        json.dump(facts, handle, indent=1)


if __name__ == "__main__":  # vLLM's engine core may start processes with spawn
    main(*sys.argv[1:4])
