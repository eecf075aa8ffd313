import pytest

from rlcs.stages.init import FORMAT_TOKENS, ROLE_TOKENS


@pytest.mark.parametrize("token", FORMAT_TOKENS + ROLE_TOKENS + ["<|endoftext|>"])
def test_special_tokens_are_single_tokens_that_round_trip(micro_tokenizer, token):
    text = f"a{token}b"
    ids = micro_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert micro_tokenizer.convert_tokens_to_ids(token) in ids
    assert micro_tokenizer.decode(ids, skip_special_tokens=False) == text


def test_format_markers_survive_skip_special_tokens(micro_tokenizer):
    text = "<think>1 + 2 = 3</think><answer><|begin_of_box|>3<|end_of_box|></answer>"
    ids = micro_tokenizer(text + "<|endoftext|>", add_special_tokens=False)["input_ids"]
    assert micro_tokenizer.decode(ids, skip_special_tokens=True) == text


def test_digits_are_individual_tokens(micro_tokenizer):
    ids = micro_tokenizer("12345", add_special_tokens=False)["input_ids"]
    assert len(ids) == 5


def test_chat_template_renders_prompt_as_prefix(micro_tokenizer):
    messages = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]
    prompt = micro_tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    full = micro_tokenizer.apply_chat_template(messages, tokenize=False)
    assert prompt == "<|user|>\nWhat is 2 + 2?\n<|assistant|>\n"
    assert full == prompt + "4<|endoftext|>"


def test_saved_model_and_tokenizer_reload_with_from_pretrained(micro_model_dir, micro_tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    assert type(model).__name__ == "Glm4ForCausalLM"
    assert model.config.vocab_size == len(micro_tokenizer)
    assert model.generation_config.eos_token_id == micro_tokenizer.eos_token_id
