"""`rlcs pretrain`: causal-LM training on documents packed into fixed-length blocks.

An image-text model also reads image-caption documents (rows with ``images``): the caption is trained given
its images. Those cannot be packed (docs/vision.md), so a data file that has any is trained one document
per row, text documents cut into ``seq_len`` pieces instead of dropped.
"""

from __future__ import annotations

from pathlib import Path

from rlcs.chat import tokenize_document, tokenize_image_document
from rlcs.config import PretrainRecipe, dump_recipe
from rlcs.data import DataError, load_documents
from rlcs.lm_loop import train_causal_lm
from rlcs.packing import PackingStats, TokenizedSequence, chunk_stream, padded_rows
from rlcs.runtime import image_text_processor, load_tokenizer, load_trainable_model, make_accelerator


def run(recipe: PretrainRecipe) -> Path:
    accelerator = make_accelerator(recipe, micro_batch_size=recipe.train.micro_batch_size)
    if accelerator.is_main_process:
        dump_recipe(recipe, Path(recipe.output_dir) / "recipe.yaml")
    tokenizer = load_tokenizer(recipe.model)
    processor = image_text_processor(recipe.model)  # saved with the model for the next stage
    data = recipe.data

    def rows(source: str) -> tuple[list[dict], PackingStats]:
        documents = load_documents(source, data.text_field, data.split, images=processor is not None)
        if not any(d.images for d in documents):
            return chunk_stream([tokenize_document(tokenizer, d.text) for d in documents], data.seq_len,
                                tokenizer.pad_token_id)
        if accelerator.is_main_process:
            print(f"note: {source} has image-caption documents, which are not packed (docs/vision.md); "
                  "one document per row")
        sequences = []
        for number, document in enumerate(documents, start=1):
            if not document.images:
                sequences += _pieces(tokenize_document(tokenizer, document.text), data.seq_len)
                continue
            try:
                sequences.append(tokenize_image_document(processor, document.text, document.images))
            except (ValueError, OSError) as exc:
                raise DataError(f"{source}: row {number}: {exc}") from exc
        found, stats = padded_rows(sequences, data.seq_len)
        if stats.dropped_too_long and accelerator.is_main_process:
            print(f"warning: {stats.dropped_too_long} of {source}'s image-caption documents are longer than "
                  f"data.seq_len={data.seq_len} tokens (image tokens included) and were skipped")
        return found, stats

    train_rows, stats = rows(data.train)
    eval_rows = rows(data.eval)[0] if data.eval else None
    model = load_trainable_model(recipe.model)
    return train_causal_lm(accelerator, recipe, "pretrain", model, tokenizer, train_rows, eval_rows, stats, processor)


def _pieces(sequence: TokenizedSequence, seq_len: int) -> list[TokenizedSequence]:
    """A text document in ``seq_len``-token pieces, each its own row (the packed layout cuts the stream of
    documents instead, so its pieces can span two documents)."""
    return [TokenizedSequence(sequence.input_ids[i:i + seq_len], sequence.labels[i:i + seq_len])
            for i in range(0, len(sequence.input_ids), seq_len)]
