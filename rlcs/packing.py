"""Turn token sequences into training rows: packed fixed-length blocks or padded batches.

A packed block holds several sequences back to back. Position ids restart at
every sequence, which makes transformers build a block-diagonal causal mask
(no attention across sequences), and the first token of each sequence gets no
label, so no sequence is trained to continue the previous one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class TokenizedSequence:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss is taken (prompt tokens)
    # what a vision-language processor returns besides the ids: per-token tensors (length len(input_ids))
    # and per-image ones (pixel_values, image_grid_thw), concatenated along dim 0 when batched
    vision: dict[str, torch.Tensor] | None = None
    # image files whose pixel values ``collate`` loads for each batch (then not kept in ``vision``)
    image_paths: tuple[str, ...] = ()

    @property
    def has_images(self) -> bool:
        return bool(self.image_paths) or bool(self.vision and "pixel_values" in self.vision)


@dataclass
class PackingStats:
    sequences: int = 0
    blocks: int = 0
    real_tokens: int = 0
    pad_tokens: int = 0
    dropped_too_long: int = 0

    @property
    def padding_share(self) -> float:
        total = self.real_tokens + self.pad_tokens
        return self.pad_tokens / total if total else 0.0


def _block(pieces: list[TokenizedSequence], seq_len: int, pad_id: int) -> dict[str, list[int]]:
    input_ids, labels, positions = [], [], []
    for piece in pieces:
        input_ids += piece.input_ids
        labels += [IGNORE] + piece.labels[1:]
        positions += list(range(len(piece.input_ids)))
    pad = seq_len - len(input_ids)
    return {
        "input_ids": input_ids + [pad_id] * pad,
        "labels": labels + [IGNORE] * pad,
        "position_ids": positions + list(range(pad)),
    }


def pack_sequences(
    sequences: list[TokenizedSequence], seq_len: int, pad_id: int
) -> tuple[list[dict[str, list[int]]], PackingStats]:
    """Best-fit-decreasing packing of whole sequences; longer ones than ``seq_len`` are dropped and counted."""
    stats = PackingStats()
    bins: list[list[TokenizedSequence]] = []
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin index)
    if any(s.has_images for s in sequences):
        raise ValueError("image rows cannot be packed: vision-language models compute rotary positions over "
                         "a whole row from its image grid, which restarting position ids per sequence breaks")
    for sequence in sorted(sequences, key=lambda s: len(s.input_ids), reverse=True):
        length = len(sequence.input_ids)
        if length > seq_len:
            stats.dropped_too_long += 1
            continue
        slot = bisect.bisect_left(free, (length, -1))
        if slot < len(free):
            remaining, index = free.pop(slot)
        else:
            remaining, index = seq_len, len(bins)
            bins.append([])
        bins[index].append(sequence)
        if remaining - length > 0:
            bisect.insort(free, (remaining - length, index))
    blocks = [_block(pieces, seq_len, pad_id) for pieces in bins]
    stats.sequences = sum(len(pieces) for pieces in bins)
    stats.blocks = len(blocks)
    stats.real_tokens = sum(len(s.input_ids) for pieces in bins for s in pieces)
    stats.pad_tokens = len(blocks) * seq_len - stats.real_tokens
    return blocks, stats


def chunk_stream(
    sequences: list[TokenizedSequence], seq_len: int, pad_id: int
) -> tuple[list[dict[str, list[int]]], PackingStats]:
    """Pretraining layout: documents end to end, cut every ``seq_len`` tokens (only the last block pads)."""
    stats = PackingStats(sequences=len(sequences))
    blocks, current, used = [], [], 0
    for sequence in sequences:
        start = 0
        while start < len(sequence.input_ids):
            take = min(seq_len - used, len(sequence.input_ids) - start)
            current.append(TokenizedSequence(sequence.input_ids[start:start + take],
                                             sequence.labels[start:start + take]))
            used += take
            start += take
            if used == seq_len:
                blocks.append(_block(current, seq_len, pad_id))
                current, used = [], 0
    if current:
        blocks.append(_block(current, seq_len, pad_id))
    stats.blocks = len(blocks)
    stats.real_tokens = sum(len(s.input_ids) for s in sequences)
    stats.pad_tokens = len(blocks) * seq_len - stats.real_tokens
    return blocks, stats


def padded_rows(
    sequences: list[TokenizedSequence], seq_len: int
) -> tuple[list[dict[str, list[int]]], PackingStats]:
    """One sequence per row (the unpacked baseline); ``collate`` pads each batch to its longest row."""
    stats = PackingStats()
    rows = []
    for sequence in sequences:
        if len(sequence.input_ids) > seq_len:
            stats.dropped_too_long += 1
            continue
        rows.append({"input_ids": sequence.input_ids, "labels": sequence.labels, **(sequence.vision or {}),
                     **({"image_paths": list(sequence.image_paths)} if sequence.image_paths else {})})
        stats.real_tokens += len(sequence.input_ids)
    stats.sequences = stats.blocks = len(rows)
    return rows, stats


def collate(rows: list[dict], pad_id: int, image_filler: dict | None = None,
            load_pixels: Callable[[Sequence[str]], dict[str, torch.Tensor]] | None = None) -> dict[str, torch.Tensor]:
    """Packed blocks (with ``position_ids``) stack as they are; plain rows are right-padded with a mask.
    Vision tensors of image rows: per-token ones are padded with 0 like the ids, per-image ones
    (``pixel_values``, ``image_grid_thw``) concatenated in row order, as the models expect. A row's
    ``image_paths`` are loaded here by ``load_pixels`` (an image-text model's ``rlcs.vision.pixel_inputs``).
    ``image_filler`` (an image-text model's, ``rlcs.vision.image_filler``) is added as one more row to a
    batch with no image, so the vision tower runs in every batch on every process (packed blocks, which
    are text only, never get one: no process runs the tower on them)."""
    if "position_ids" in rows[0]:
        return {key: torch.tensor([row[key] for row in rows]) for key in ("input_ids", "labels", "position_ids")}
    if image_filler is not None and not any("pixel_values" in row or "image_paths" in row for row in rows):
        rows = [*rows, image_filler]
    width = max(len(row["input_ids"]) for row in rows)
    batch = {"input_ids": [], "labels": [], "attention_mask": []}
    for row in rows:
        pad = width - len(row["input_ids"])
        batch["input_ids"].append(row["input_ids"] + [pad_id] * pad)
        batch["labels"].append(row["labels"] + [IGNORE] * pad)
        batch["attention_mask"].append([1] * len(row["input_ids"]) + [0] * pad)
    collated = {key: torch.tensor(value) for key, value in batch.items()}
    visions = [_row_vision(row, load_pixels) for row in rows]
    if any(visions):
        collated.update(batch_vision(visions, [len(row["input_ids"]) for row in rows], width))
    return collated


def _row_vision(row: dict, load_pixels) -> dict[str, torch.Tensor] | None:
    """A row's image tensors, its image files loaded (and checked against the grid it was tokenized with)."""
    vision = {key: value for key, value in row.items() if key not in ("input_ids", "labels", "image_paths")}
    if "image_paths" in row:
        if load_pixels is None:
            raise ValueError("a row holds image paths; collate needs load_pixels (rlcs.vision.pixel_inputs)")
        loaded = load_pixels(row["image_paths"])
        if "image_grid_thw" in vision and not torch.equal(loaded["image_grid_thw"], vision["image_grid_thw"]):
            raise ValueError(f"image files {row['image_paths']} no longer give the patch grid the row was "
                             "tokenized with; were they changed during training?")
        vision.update(loaded)
    return vision or None


def batch_vision(visions: list[dict | None], lengths: list[int], width: int, left_pad: bool = False
                 ) -> dict[str, torch.Tensor]:
    """One batch's image tensors from its rows' (None for a text row): per-token tensors (as long as the
    row's prompt, or its whole ``lengths`` entry) padded with 0 to ``width`` on the side the ids are
    padded; per-image tensors (pixel_values, image_grid_thw) concatenated in row order."""
    keys = sorted({key for vision in visions if vision for key in vision})
    out = {}
    for key in keys:
        present = [v[key] for v in visions if v and key in v]
        if present[0].ndim == 1:  # per token over the prompt
            rows = []
            for vision, length in zip(visions, lengths):
                value = vision[key] if vision and key in vision else torch.zeros(0, dtype=present[0].dtype)
                value = torch.nn.functional.pad(value, (0, length - len(value)))  # generated tokens are text
                pad = (width - length, 0) if left_pad else (0, width - length)
                rows.append(torch.nn.functional.pad(value, pad))
            out[key] = torch.stack(rows)
        else:
            out[key] = torch.cat(present)
    return out


def count_tokens(batch: dict[str, torch.Tensor], pad_id: int) -> tuple[int, int]:
    """(real tokens, padding tokens) in a collated batch."""
    if "attention_mask" in batch:
        real = int(batch["attention_mask"].sum())
    else:  # packed: padding is the trailing segment whose labels are all ignored and ids are pad
        real = int(((batch["input_ids"] != pad_id) | (batch["labels"] != IGNORE)).sum())
    return real, batch["input_ids"].numel() - real
