"""`rlcs sft`: long chain-of-thought fine-tuning, loss on the response tokens only."""

from __future__ import annotations

from pathlib import Path

from rlcs.chat import tokenize_conversation, tokenize_image_conversation
from rlcs.config import SFTRecipe, dump_recipe
from rlcs.data import DataError, load_sft_conversations
from rlcs.lm_loop import train_causal_lm
from rlcs.packing import pack_sequences, padded_rows
from rlcs.runtime import image_text_processor, load_tokenizer, load_trainable_model, make_accelerator


def run(recipe: SFTRecipe) -> Path:
    accelerator = make_accelerator(recipe, micro_batch_size=recipe.train.micro_batch_size)
    if accelerator.is_main_process:
        dump_recipe(recipe, Path(recipe.output_dir) / "recipe.yaml")
    tokenizer = load_tokenizer(recipe.model)
    # An image-text model's rows (text-only ones too) go through its processor, so every batch has the
    # same tensors; a text model's rows with images are refused when loaded.
    processor = image_text_processor(recipe.model)
    data = recipe.data

    def rows(source: str):
        conversations = load_sft_conversations(source, data.split, images=processor is not None)
        if processor is None:
            sequences = [tokenize_conversation(tokenizer, c.messages) for c in conversations]
        else:
            sequences = [tokenize_image_conversation(processor, c.messages, c.images)
                         for c in conversations]
        with_images = any(c.images for c in conversations)
        if data.packing and with_images and accelerator.is_main_process:
            print(f"note: {source} has image rows, which are not packed (docs/vision.md); one row per sequence")
        if data.packing and not with_images:
            return pack_sequences(sequences, data.seq_len, tokenizer.pad_token_id)
        return padded_rows(sequences, data.seq_len)

    def warn_too_long(source: str, skipped: int) -> None:
        if skipped and accelerator.is_main_process:
            print(f"warning: {skipped} of {source}'s conversations are longer than "
                  f"data.seq_len={data.seq_len} tokens and were skipped")

    train_rows, stats = rows(data.train)
    warn_too_long(data.train, stats.dropped_too_long)
    eval_rows = None
    if data.eval:
        eval_rows, eval_stats = rows(data.eval)
        warn_too_long(data.eval, eval_stats.dropped_too_long)
        if not eval_rows:
            raise DataError(f"{data.eval}: every conversation is longer than data.seq_len={data.seq_len} tokens, "
                            "so there is nothing to evaluate; raise data.seq_len or set data.eval: null")
    model = load_trainable_model(recipe.model)
    return train_causal_lm(accelerator, recipe, "sft", model, tokenizer, train_rows, eval_rows, stats, processor)
