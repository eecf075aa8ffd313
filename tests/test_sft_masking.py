from rlcs.chat import tokenize_conversation, tokenize_document
from rlcs.packing import IGNORE


def test_loss_only_on_the_response_tokens(micro_tokenizer):
    response = "<think>2 + 2 = 4</think><answer><|begin_of_box|>4<|end_of_box|></answer>"
    messages = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": response}]
    sequence = tokenize_conversation(micro_tokenizer, messages)

    prompt_ids = micro_tokenizer("<|user|>\nWhat is 2 + 2?\n<|assistant|>\n", add_special_tokens=False)["input_ids"]
    response_ids = micro_tokenizer(response + "<|endoftext|>", add_special_tokens=False)["input_ids"]
    assert sequence.input_ids == prompt_ids + response_ids
    assert sequence.labels == [IGNORE] * len(prompt_ids) + response_ids


def test_only_the_last_assistant_turn_is_trained(micro_tokenizer):
    messages = [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "first"},
        {"role": "user", "content": "b"}, {"role": "assistant", "content": "second"},
    ]
    sequence = tokenize_conversation(micro_tokenizer, messages)
    trained = [t for t, label in zip(sequence.input_ids, sequence.labels) if label != IGNORE]
    assert micro_tokenizer.decode(trained, skip_special_tokens=False) == "second<|endoftext|>"


def test_documents_end_with_eos_and_are_fully_trained(micro_tokenizer):
    sequence = tokenize_document(micro_tokenizer, "Question: 1 + 1")
    assert sequence.input_ids[-1] == micro_tokenizer.eos_token_id
    assert sequence.labels == sequence.input_ids
