"""The spread of an image-text model's image tokens: the maths on hand-made tensors, and the probe reading
exactly what the tiny GLM-4V's decoder is given at its image positions."""

from __future__ import annotations

import math

import pytest
import torch

from rlcs.image_spread import ImageTokenSpread, token_spread
from rlcs.packing import IGNORE

from .test_vision import encode, image_chat, processor, vl_dir, vl_model  # noqa: F401  (module fixtures)


def test_token_spread_by_hand():
    # per-feature std across the two tokens: (1, 0), mean 0.5; rms of all four entries sqrt(2/4)
    assert token_spread(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(0.5 / math.sqrt(0.5))
    # the same vector for every token: nothing about the image is left
    assert token_spread(torch.tensor([[3.0, -2.0, 1.0]] * 4)) == 0.0
    assert token_spread(torch.zeros(3, 2)) == 0.0
    # scale-free: only how much the tokens differ relative to their size counts
    features = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    assert token_spread(100 * features) == pytest.approx(token_spread(features), rel=1e-5)
    # a shared offset much larger than the differences drives it toward 0
    assert token_spread(features + 50.0) < 0.05 * token_spread(features)


def test_token_spread_refuses_fewer_than_two_tokens():
    with pytest.raises(ValueError, match="tokens >= 2"):
        token_spread(torch.ones(1, 4))


def test_the_probe_reads_the_projector_output_of_trained_rows_only(vl_model, processor):  # noqa: F811
    batch = encode(processor, [image_chat((200, 20)), image_chat((20, 200), "Count the stripes.")])
    labels = batch["input_ids"].clone()
    labels[1] = IGNORE  # the second row is a filler: no label, so it is left out
    with torch.no_grad():
        features = vl_model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"])
    features = features.pooler_output if hasattr(features, "pooler_output") else features
    first_image = torch.cat(list(features))[: int((batch["input_ids"][0] == vl_model.config.image_token_id).sum())]

    probe = ImageTokenSpread(vl_model, vl_model.config.image_token_id)
    try:
        probe.expect({**batch, "labels": labels})
        with torch.no_grad():
            vl_model(**batch)
            vl_model(**batch)  # no expect() before it (an evaluation forward): not counted
        total, rows = probe.take()
        assert rows == 1
        assert total == pytest.approx(token_spread(first_image), rel=1e-5)
        assert 0.05 < total < 2.0  # a freshly built tower: its tokens differ
        assert probe.take() == (0.0, 0)
    finally:
        probe.close()
