"""Rollout: G sampled completions per prompt, behind a small engine interface.

``HFEngine`` uses Hugging Face ``generate`` (parameters gathered under ZeRO-3 for
the duration of generation); a vLLM engine can implement the same
``generate(prompts, group_size, params)`` without touching the RL loop.

Force answering (GLM-4.1V-Thinking): a completion that spends its whole thinking
budget without closing ``</think>`` gets ``</think><answer>`` appended and a
short answer budget, so it is scored on an answer rather than on a truncation.
The inserted tokens are context, not policy output: their loss mask is 0.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Protocol

import torch

from rewards.extract import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256  # thinking budget + answer budget
    answer_budget: int = 32  # tokens reserved for the answer after a forced </think>
    temperature: float = 1.0
    top_p: float = 1.0  # the paper found lower top-p garbles output over time
    top_k: int = 0  # 0: off
    force_answer: bool = True


@dataclass
class Completion:
    prompt_index: int
    prompt_ids: list[int]
    token_ids: list[int]  # everything after the prompt, forced tokens included
    loss_mask: list[int]  # 1 where the policy chose the token
    text: str = ""
    truncated: bool = False  # ended without a stop token
    forced: bool = False  # </think><answer> was inserted
    extra: dict = field(default_factory=dict)


class RolloutEngine(Protocol):
    def generate(self, prompts: list[str], group_size: int, params: SamplingParams) -> list[Completion]: ...


def stop_ids(tokenizer) -> list[int]:
    ids = [tokenizer.eos_token_id]
    answer_close = tokenizer.convert_tokens_to_ids(ANSWER_CLOSE)
    if isinstance(answer_close, int) and answer_close != tokenizer.unk_token_id:
        ids.append(answer_close)
    return ids


@contextlib.contextmanager
def gathered_for_generation(model, accelerator):
    """The full model for ``generate``: under ZeRO-3 every rank gathers the parameters
    once for the whole generation instead of layer by layer at every decoding step."""
    unwrapped = accelerator.unwrap_model(model)
    plugin = accelerator.state.deepspeed_plugin
    if plugin is not None and plugin.zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters())):
            yield unwrapped
    else:
        yield unwrapped


class HFEngine:
    def __init__(self, model, tokenizer, accelerator):
        self.model, self.tokenizer, self.accelerator = model, tokenizer, accelerator
        self.stops = stop_ids(tokenizer)
        self.force_ids = tokenizer(THINK_CLOSE + ANSWER_OPEN, add_special_tokens=False)["input_ids"]
        self.think_close_ids = tokenizer(THINK_CLOSE, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def generate(self, prompts: list[str], group_size: int, params: SamplingParams) -> list[Completion]:
        prompt_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        requests = [(index, ids) for index, ids in enumerate(prompt_ids) for _ in range(group_size)]
        think_budget = params.max_new_tokens - (params.answer_budget if params.force_answer else 0)
        with gathered_for_generation(self.model, self.accelerator) as model:
            was_training = model.training
            model.eval()
            first = self._sample(model, [ids for _, ids in requests], think_budget, params)
            completions = [Completion(index, ids, tokens, [1] * len(tokens)) for (index, ids), tokens in
                           zip(requests, first)]
            if params.force_answer:
                self._force_answers(model, completions, params)
            model.train(was_training)
        for completion in completions:
            completion.truncated = not completion.token_ids or completion.token_ids[-1] not in self.stops
            completion.text = self.tokenizer.decode(completion.token_ids, skip_special_tokens=False)
        return completions

    def _force_answers(self, model, completions: list[Completion], params: SamplingParams) -> None:
        stuck = [c for c in completions if not c.token_ids or c.token_ids[-1] not in self.stops]
        stuck = [c for c in stuck if not _contains(c.token_ids, self.think_close_ids)]
        # Under ZeRO-3 every generate call is a collective (synced_gpus): when any process has stuck
        # completions, all make the second call, a process with none on one throw-away row.
        if not self._any_process(bool(stuck)):
            return
        contexts = [c.prompt_ids + c.token_ids + self.force_ids for c in stuck] or [list(self.force_ids)]
        answers = self._sample(model, contexts, params.answer_budget, params)
        for completion, answer in zip(stuck, answers):
            completion.token_ids += self.force_ids + answer
            completion.loss_mask += [0] * len(self.force_ids) + [1] * len(answer)
            completion.forced = True

    def _any_process(self, flag: bool) -> bool:
        if self.accelerator.num_processes == 1:
            return flag
        count = torch.tensor([float(flag)], device=self.accelerator.device)
        return bool(self.accelerator.reduce(count, reduction="sum").item() > 0)

    def _sample(self, model, contexts: list[list[int]], max_new_tokens: int, params: SamplingParams):
        """New tokens per context, cut after the first stop token (kept) and without padding."""
        pad = self.tokenizer.pad_token_id
        width = max(len(c) for c in contexts)
        input_ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts], device=self.accelerator.device)
        attention = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts],
                                 device=self.accelerator.device)
        output = model.generate(
            input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new_tokens, do_sample=True,
            temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None,
            eos_token_id=self.stops, pad_token_id=pad,
        )
        results = []
        for row in output[:, width:].tolist():
            cut = next((k + 1 for k, t in enumerate(row) if t in self.stops), len(row))
            results.append(row[:cut])
        return results


def _contains(sequence: list[int], pattern: list[int]) -> bool:
    n = len(pattern)
    return any(sequence[i:i + n] == pattern for i in range(len(sequence) - n + 1))
