import torch
from transformers import AutoModelForCausalLM

from rlcs.packing import IGNORE, TokenizedSequence, chunk_stream, collate, count_tokens, pack_sequences, padded_rows

PAD = 0


def _seq(ids, prompt_len=0):
    return TokenizedSequence(list(ids), [IGNORE] * prompt_len + list(ids[prompt_len:]))


def test_packing_fills_blocks_and_reports_padding():
    sequences = [_seq(range(1, 7)), _seq(range(1, 5)), _seq(range(1, 3)), _seq(range(1, 11))]
    blocks, stats = pack_sequences(sequences, seq_len=10, pad_id=PAD)
    # best fit decreasing: [10], [6, 4], [2 + 8 pad]
    assert stats.blocks == 3 and stats.real_tokens == 22 and stats.pad_tokens == 8
    assert abs(stats.padding_share - 8 / 30) < 1e-9
    assert all(len(b["input_ids"]) == 10 for b in blocks)


def test_too_long_sequences_are_counted_not_silently_lost():
    blocks, stats = pack_sequences([_seq(range(1, 20)), _seq(range(1, 4))], seq_len=10, pad_id=PAD)
    assert stats.dropped_too_long == 1 and stats.sequences == 1


def test_labels_never_cross_a_document_boundary():
    first, second = _seq([5, 6, 7], prompt_len=1), _seq([8, 9])
    block = pack_sequences([first, second], seq_len=8, pad_id=PAD)[0][0]
    assert block["input_ids"] == [5, 6, 7, 8, 9, PAD, PAD, PAD]
    # first token of each document has no label; the prompt token stays masked; padding is masked
    assert block["labels"] == [IGNORE, 6, 7, IGNORE, 9, IGNORE, IGNORE, IGNORE]
    assert block["position_ids"] == [0, 1, 2, 0, 1, 0, 1, 2]


def test_attention_does_not_leak_between_packed_documents(micro_model_dir):
    """A document's logits inside a packed block equal its logits when run alone."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(micro_model_dir).eval()
    doc_a, doc_b = [11, 12, 13, 14, 15], [21, 22, 23, 24]
    block = pack_sequences([_seq(doc_a), _seq(doc_b)], seq_len=12, pad_id=PAD)[0][0]
    batch = collate([block], pad_id=PAD)
    with torch.no_grad():
        # use_cache=False as in the training loop: with a cache transformers skips packed-mask detection
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone_b = model(input_ids=torch.tensor([doc_b])).logits[0]
        shifted = model(input_ids=torch.tensor([doc_a + doc_b])).logits[0]  # no packing: B sees A
    start = len(doc_a)
    assert torch.allclose(packed[start:start + len(doc_b)], alone_b, atol=1e-5)
    assert not torch.allclose(shifted[start:], alone_b, atol=1e-3)


def test_chunk_stream_cuts_documents_and_restarts_positions():
    blocks, stats = chunk_stream([_seq(range(1, 8)), _seq(range(1, 6))], seq_len=5, pad_id=PAD)
    assert [b["input_ids"] for b in blocks] == [[1, 2, 3, 4, 5], [6, 7, 1, 2, 3], [4, 5, PAD, PAD, PAD]]
    assert blocks[1]["position_ids"] == [0, 1, 0, 1, 2]
    assert blocks[1]["labels"] == [IGNORE, 7, IGNORE, 2, 3]
    assert stats.pad_tokens == 3


def test_padded_batches_mask_padding():
    rows, _ = padded_rows([_seq([1, 2, 3]), _seq([4])], seq_len=10)
    batch = collate(rows, pad_id=PAD)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, PAD, PAD]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"][1].tolist() == [4, IGNORE, IGNORE]
    assert count_tokens(batch, PAD) == (4, 2)
