"""`rlcs pretrain`: causal-LM training on documents packed into fixed-length blocks."""

from __future__ import annotations

from pathlib import Path

from rlcs.chat import tokenize_document
from rlcs.config import PretrainRecipe, dump_recipe
from rlcs.data import load_texts
from rlcs.lm_loop import train_causal_lm
from rlcs.packing import chunk_stream
from rlcs.runtime import image_text_processor, load_tokenizer, load_trainable_model, make_accelerator


def run(recipe: PretrainRecipe) -> Path:
    accelerator = make_accelerator(recipe, micro_batch_size=recipe.train.micro_batch_size)
    if accelerator.is_main_process:
        dump_recipe(recipe, Path(recipe.output_dir) / "recipe.yaml")
    tokenizer = load_tokenizer(recipe.model)
    data = recipe.data

    def blocks(source: str):
        docs = [tokenize_document(tokenizer, text) for text in load_texts(source, data.text_field, data.split)]
        return chunk_stream(docs, data.seq_len, tokenizer.pad_token_id)

    train_rows, stats = blocks(data.train)
    eval_rows = blocks(data.eval)[0] if data.eval else None
    model = load_trainable_model(recipe.model)
    # an image-text model's decoder pretrains on text here; its processor is saved with it for the next stage
    processor = image_text_processor(recipe.model)
    return train_causal_lm(accelerator, recipe, "pretrain", model, tokenizer, train_rows, eval_rows, stats, processor)
