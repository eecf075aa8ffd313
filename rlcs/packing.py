"""Turn token sequences into training rows: packed fixed-length blocks or padded batches.

A packed block holds several sequences back to back. Position ids restart at
every sequence, which makes transformers build a block-diagonal causal mask
(no attention across sequences), and the first token of each sequence gets no
label, so no sequence is trained to continue the previous one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class TokenizedSequence:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss is taken (prompt tokens)


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
        rows.append({"input_ids": sequence.input_ids, "labels": sequence.labels})
        stats.real_tokens += len(sequence.input_ids)
    stats.sequences = stats.blocks = len(rows)
    return rows, stats


def collate(rows: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Packed blocks (with ``position_ids``) stack as they are; plain rows are right-padded with a mask."""
    if "position_ids" in rows[0]:
        return {key: torch.tensor([row[key] for row in rows]) for key in ("input_ids", "labels", "position_ids")}
    width = max(len(row["input_ids"]) for row in rows)
    batch = {"input_ids": [], "labels": [], "attention_mask": []}
    for row in rows:
        pad = width - len(row["input_ids"])
        batch["input_ids"].append(row["input_ids"] + [pad_id] * pad)
        batch["labels"].append(row["labels"] + [IGNORE] * pad)
        batch["attention_mask"].append([1] * len(row["input_ids"]) + [0] * pad)
    return {key: torch.tensor(value) for key, value in batch.items()}


def count_tokens(batch: dict[str, torch.Tensor], pad_id: int) -> tuple[int, int]:
    """(real tokens, padding tokens) in a collated batch."""
    if "attention_mask" in batch:
        real = int(batch["attention_mask"].sum())
    else:  # packed: padding is the trailing segment whose labels are all ignored and ids are pad
        real = int(((batch["input_ids"] != pad_id) | (batch["labels"] != IGNORE)).sum())
    return real, batch["input_ids"].numel() - real
