"""The generation engine: force answering and stops on a scripted model, generation settings on a real one."""

from types import SimpleNamespace

import torch

from rlcs.engine import HFEngine, SamplingParams


class ScriptedModel:
    """Returns, for each call, the next scripted continuation for every row (then padding)."""

    def __init__(self, scripts: list[list[int]], pad: int):
        self.scripts, self.pad, self.training, self.calls = scripts, pad, False, []
        self.device, self.generation_config = torch.device("cpu"), None

    def generate(self, input_ids, attention_mask, generation_config, **_):
        script = self.scripts[len(self.calls)]
        max_new_tokens = generation_config.max_new_tokens
        self.calls.append({"inputs": input_ids.tolist(), "max_new_tokens": max_new_tokens})
        new = (script + [generation_config.pad_token_id] * max_new_tokens)[:max_new_tokens]
        return torch.cat([input_ids, torch.tensor([new] * input_ids.shape[0])], dim=1)

    def eval(self):
        self.training = False

    def train(self, mode=True):
        self.training = mode


def _accelerator(num_processes=1, others_calls=0):
    """One process's view; ``gather`` adds the ``generate`` calls the other process needs."""
    return SimpleNamespace(unwrap_model=lambda m: m, state=SimpleNamespace(deepspeed_plugin=None),
                           device=torch.device("cpu"), num_processes=num_processes, is_local_main_process=True,
                           gather=lambda tensor: torch.cat([tensor, torch.tensor([others_calls])]))


def test_thinking_that_never_closes_gets_a_forced_answer(micro_tokenizer):
    tok = micro_tokenizer
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    rambling = ids("<think>") + ids(" 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1")
    answer = ids("<|begin_of_box|>7<|end_of_box|></answer>")
    model = ScriptedModel([rambling, answer], tok.pad_token_id)
    engine = HFEngine(model, tok, _accelerator())
    params = SamplingParams(max_new_tokens=20, answer_budget=8)

    [completion] = engine.generate(["<|user|>\nq\n<|assistant|>\n"], n=1, params=params)

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
        engine = HFEngine(model, tok, _accelerator(num_processes=2, others_calls=others_stuck))
        [completion] = engine.generate(["<|user|>\nq\n<|assistant|>\n"], 1, params)
        assert len(model.calls) == calls
        assert not completion.forced and completion.token_ids == finished


def test_think_close_spelled_in_several_tokens_counts_as_closed(micro_tokenizer):
    """A checkpoint's tokenizer may not have </think> as one token: the engine looks for it in the text."""
    tok = micro_tokenizer
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    spelled = [i for character in "</think>" for i in ids(character)]
    assert len(spelled) > 1 and tok.decode(spelled) == "</think>"
    thinking = ids("<think>") + ids(" 1 1") + spelled + ids("<answer> 1 1 1 1 1 1")
    model = ScriptedModel([thinking, ids("7")], tok.pad_token_id)
    params = SamplingParams(max_new_tokens=len(thinking) + 4, answer_budget=4)
    [completion] = HFEngine(model, tok, _accelerator()).generate(["p"], 1, params)
    assert len(model.calls) == 1 and not completion.forced and completion.truncated


def test_every_eos_id_of_the_checkpoint_stops_generation(micro_tokenizer):
    """A checkpoint's generation_config may list several end-of-sequence ids (e.g. <|user|> for chat models)."""
    tok = micro_tokenizer
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    user = tok.convert_tokens_to_ids("<|user|>")
    model = ScriptedModel([ids("<think>ok") + [user] + ids(" 1 1 1")], tok.pad_token_id)
    model.generation_config = SimpleNamespace(eos_token_id=[tok.eos_token_id, user])
    params = SamplingParams(max_new_tokens=20, answer_budget=4, force_answer=False)
    [completion] = HFEngine(model, tok, _accelerator()).generate(["p"], 1, params)
    assert completion.token_ids == ids("<think>ok") + [user] and not completion.truncated


def test_generation_settings_come_from_the_params_not_the_checkpoint(micro_model_dir, micro_tokenizer):
    """A hub checkpoint's generation_config (here an extreme repetition penalty and top-k 1) must not
    change rollouts: the engine's greedy output is the same with and without it."""
    from transformers import AutoModelForCausalLM

    from rlcs.engine import greedy

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    prompts = ["<|user|>\nAdd up the numbers:\nA: 1\n<|assistant|>\n", "<|user|>\nq\n<|assistant|>\n"]
    engine = HFEngine(model, micro_tokenizer)
    plain = [c.token_ids for c in engine.generate(prompts, 1, greedy(24))]
    model.generation_config.repetition_penalty = 50.0
    model.generation_config.no_repeat_ngram_size = 1
    assert [c.token_ids for c in HFEngine(model, micro_tokenizer).generate(prompts, 1, greedy(24))] == plain
    assert model.generation_config.repetition_penalty == 50.0  # the checkpoint's own config is left as it was
    # ... and it does matter: a bare generate call picks it up and decodes something else
    inputs = micro_tokenizer(prompts[:1], return_tensors="pt", add_special_tokens=False)
    inherited = model.generate(**inputs, max_new_tokens=24, do_sample=False)[0, inputs["input_ids"].shape[1]:]
    assert inherited.tolist() != plain[0][:len(inherited)]
