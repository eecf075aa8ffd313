"""Force answering, on a scripted 'model' whose generations are fixed in advance."""

from types import SimpleNamespace

import torch

from rlcs.rl.rollout import HFEngine, SamplingParams


class ScriptedModel:
    """Returns, for each call, the next scripted continuation for every row (then padding)."""

    def __init__(self, scripts: list[list[int]], pad: int):
        self.scripts, self.pad, self.training, self.calls = scripts, pad, False, []

    def generate(self, input_ids, attention_mask, max_new_tokens, eos_token_id, pad_token_id, **_):
        script = self.scripts[len(self.calls)]
        self.calls.append({"inputs": input_ids.tolist(), "max_new_tokens": max_new_tokens})
        new = (script + [pad_token_id] * max_new_tokens)[:max_new_tokens]
        return torch.cat([input_ids, torch.tensor([new] * input_ids.shape[0])], dim=1)

    def eval(self):
        self.training = False

    def train(self, mode=True):
        self.training = mode


def _accelerator(num_processes=1, others_stuck=0):
    """One process's view; ``reduce`` adds what the ``others_stuck`` other processes report."""
    return SimpleNamespace(unwrap_model=lambda m: m, state=SimpleNamespace(deepspeed_plugin=None),
                           device=torch.device("cpu"), num_processes=num_processes,
                           reduce=lambda tensor, reduction: tensor + others_stuck)


def test_thinking_that_never_closes_gets_a_forced_answer(micro_tokenizer):
    tok = micro_tokenizer
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    rambling = ids("<think>") + ids(" 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1")
    answer = ids("<|begin_of_box|>7<|end_of_box|></answer>")
    model = ScriptedModel([rambling, answer], tok.pad_token_id)
    engine = HFEngine(model, tok, _accelerator())
    params = SamplingParams(max_new_tokens=20, answer_budget=8)

    [completion] = engine.generate(["<|user|>\nq\n<|assistant|>\n"], group_size=1, params=params)

    assert model.calls[0]["max_new_tokens"] == 12  # the thinking budget leaves room for the answer
    assert model.calls[1]["max_new_tokens"] == 8
    forced = ids("</think><answer>")
    assert model.calls[1]["inputs"][0][-len(forced):] == forced  # the answer is generated after the insertion
    assert completion.forced and not completion.truncated
    assert completion.text.endswith("</think><answer><|begin_of_box|>7<|end_of_box|></answer>")
    # the inserted tokens are context, not policy output
    start = len(rambling[:12])
    assert completion.loss_mask[start:start + len(forced)] == [0] * len(forced)
    assert sum(completion.loss_mask) == len(completion.token_ids) - len(forced)


def test_completions_that_finish_are_not_forced(micro_tokenizer):
    tok = micro_tokenizer
    full = tok("<think>ok</think><answer><|begin_of_box|>1<|end_of_box|></answer>",
               add_special_tokens=False)["input_ids"]
    model = ScriptedModel([full], tok.pad_token_id)
    params = SamplingParams(max_new_tokens=40, answer_budget=8)
    [completion] = HFEngine(model, tok, _accelerator()).generate(["p"], 1, params)
    assert len(model.calls) == 1 and not completion.forced and not completion.truncated
    assert completion.loss_mask == [1] * len(full)


def test_closed_thinking_without_an_answer_is_truncated_not_forced(micro_tokenizer):
    tok = micro_tokenizer
    partial = tok("<think>ok</think><answer> 1 1 1 1 1 1 1 1", add_special_tokens=False)["input_ids"]
    model = ScriptedModel([partial], tok.pad_token_id)
    params = SamplingParams(max_new_tokens=10, answer_budget=2)
    [completion] = HFEngine(model, tok, _accelerator()).generate(["p"], 1, params)
    assert len(model.calls) == 1 and completion.truncated and not completion.forced


def test_a_process_with_nothing_stuck_still_joins_the_second_generate_when_another_has(micro_tokenizer):
    """ZeRO-3 generate is a collective: every process must make the force-answer call if any needs it."""
    tok = micro_tokenizer
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    finished = ids("<think>x</think><answer><|begin_of_box|>7<|end_of_box|></answer>")
    params = SamplingParams(max_new_tokens=len(finished) + 8, answer_budget=4)
    for others_stuck, calls in ((1, 2), (0, 1)):
        model = ScriptedModel([finished, ids("7")], tok.pad_token_id)
        engine = HFEngine(model, tok, _accelerator(num_processes=2, others_stuck=others_stuck))
        [completion] = engine.generate(["<|user|>\nq\n<|assistant|>\n"], 1, params)
        assert len(model.calls) == calls
        assert not completion.forced and completion.token_ids == finished
