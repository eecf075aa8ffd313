"""Conversations -> token ids with loss only on the final assistant response.

A row with ``images`` becomes a user turn whose content is a list of parts in
the chat-template style (one ``{"type": "image"}`` per image, then the text);
its tokens come from the model's processor, which expands each image
placeholder to the image's patch tokens and returns the pixel tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image
from transformers import PreTrainedTokenizerBase

from rlcs.engine import Prompt
from rlcs.packing import IGNORE, TokenizedSequence
from rlcs.vision import load_images, split_processor_output


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> str:
    """The text the model is given before it answers (generation prompt included)."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def example_messages(example: dict) -> list[dict]:
    """A data row's conversation: its ``messages`` (roles and contents only) or its ``prompt`` as one user
    turn, with one image part per entry of ``images`` ahead of the text."""
    if example.get("messages") is not None:
        return [{"role": m["role"], "content": m["content"]} for m in example["messages"]]
    images = example.get("images") or []
    if not images:
        return [{"role": "user", "content": example["prompt"]}]
    parts = [{"type": "image"} for _ in images] + [{"type": "text", "text": example["prompt"]}]
    return [{"role": "user", "content": parts}]


def example_prompt(tokenizer: PreTrainedTokenizerBase, example: dict) -> str:
    """The prompt text of a data row, as rollout, eval, grading and ``rlcs plan`` give it to the model."""
    return render_prompt(tokenizer, example_messages(example))


def example_request(tokenizer: PreTrainedTokenizerBase, example: dict) -> str | Prompt:
    """What the engine is given for a data row: its prompt text, with the row's images when it has any."""
    text = example_prompt(tokenizer, example)
    images = example.get("images") or []
    return Prompt(text, tuple(load_images(images))) if images else text


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


def tokenize_image_conversation(processor, messages: list[dict],
                                images: Sequence[str] | Sequence[Image.Image]) -> TokenizedSequence:
    """``tokenize_conversation`` through a vision-language processor: labels cover the last assistant turn,
    and ``vision`` holds what the processor returns besides token ids (``image_grid_thw``, per-token type
    ids, and ``pixel_values`` for in-memory images), without the batch dimension of per-token ones.
    ``images`` as file paths: the pixels are not kept; the sequence keeps the paths, and ``collate`` loads
    them again for each batch (``rlcs.vision.pixel_inputs``).

    The prompt is processed with the same images and must be a token prefix of the whole conversation;
    the processor's image expansion changes the text, so character offsets cannot be used here."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("the conversation must end with an assistant message")
    paths = tuple(images) if images and all(isinstance(i, str) for i in images) else ()
    pictures = load_images(paths) if paths else list(images)
    full_text = processor.apply_chat_template(messages, tokenize=False)
    prompt_text = processor.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    # the rendered template already holds every special token (as tokenize_conversation assumes)
    ids, vision = split_processor_output(processor(text=[full_text], images=pictures or None,
                                                   return_tensors="pt", add_special_tokens=False))
    prompt_ids, _ = split_processor_output(processor(text=[prompt_text], images=pictures or None,
                                                     return_tensors="pt", add_special_tokens=False))
    if ids[:len(prompt_ids)] != prompt_ids:
        raise ValueError("the processor does not render the prompt as a token prefix of the full conversation; "
                         "prompt masking needs that property")
    labels = [IGNORE] * len(prompt_ids) + ids[len(prompt_ids):]
    if paths:
        vision.pop("pixel_values", None)
    return TokenizedSequence(ids, labels, vision, paths)


def tokenize_image_document(processor, text: str,
                            images: Sequence[str] | Sequence[Image.Image]) -> TokenizedSequence:
    """An image-caption pretraining document: the images as a user turn and the text as the reply, through
    the model's own chat template (which knows its image placeholders); labels cover the text."""
    parts = [{"type": "image"} for _ in images]
    return tokenize_image_conversation(processor, [{"role": "user", "content": parts},
                                                   {"role": "assistant", "content": text}], images)
