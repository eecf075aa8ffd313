"""Conversations -> token ids with loss only on the final assistant response."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from rlcs.packing import IGNORE, TokenizedSequence


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> str:
    """The text the model is given before it answers (generation prompt included)."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def example_messages(example: dict) -> list[dict]:
    """A data row's conversation: its ``messages`` (roles and contents only) or its ``prompt`` as one user turn."""
    if "messages" in example:
        return [{"role": m["role"], "content": m["content"]} for m in example["messages"]]
    return [{"role": "user", "content": example["prompt"]}]


def example_prompt(tokenizer: PreTrainedTokenizerBase, example: dict) -> str:
    """The prompt text of a data row, as rollout, eval, grading and ``rlcs plan`` give it to the model."""
    return render_prompt(tokenizer, example_messages(example))


def tokenize_conversation(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> TokenizedSequence:
    """Labels cover only the last assistant turn (and what the template appends after it, e.g. EOS).

    Character offsets decide which tokens belong to the response, so this works
    for any fast tokenizer whose chat template renders the prompt as a prefix of
    the full conversation, without assuming token boundaries line up.
    """
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("the conversation must end with an assistant message")
    prompt_text = render_prompt(tokenizer, messages[:-1])
    full_text = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError(
            "the chat template does not render the prompt as a prefix of the full conversation; "
            "prompt masking needs that property"
        )
    encoded = tokenizer(full_text, add_special_tokens=False, return_offsets_mapping=True)
    boundary = len(prompt_text)
    labels = [
        token if start >= boundary else IGNORE
        for token, (start, _end) in zip(encoded["input_ids"], encoded["offset_mapping"])
    ]
    return TokenizedSequence(list(encoded["input_ids"]), labels)


def tokenize_document(tokenizer: PreTrainedTokenizerBase, text: str) -> TokenizedSequence:
    """A pretraining document, closed with EOS so the model learns where documents end."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return TokenizedSequence(ids, list(ids))
