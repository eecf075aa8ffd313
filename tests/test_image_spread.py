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


def test_token_spread_is_at_most_one():
    # the mean of per-feature stds is at most their root mean square, which is at most the entries' rms
    for seed in range(5):
        features = torch.randn(7, 5, generator=torch.Generator().manual_seed(seed))
        assert 0.0 < token_spread(features) <= 1.0
    assert token_spread(torch.tensor([[1.0], [-1.0]])) == pytest.approx(1.0)


class _Decoder(torch.nn.Module):
    def forward(self, inputs_embeds):
        return inputs_embeds


class _ImageTextModel(torch.nn.Module):
    """Just enough of an image-text model: a decoder that is given ``inputs_embeds``."""

    def __init__(self):
        super().__init__()
        self.decoder = _Decoder()

    def get_decoder(self):
        return self.decoder


IMAGE = 9


def test_each_image_of_a_row_is_measured_on_its_own_and_filler_rows_are_not():
    model = _ImageTextModel()
    probe = ImageTokenSpread(model, IMAGE, merge_size=2)
    # row 0: two images of 1x2x4 patches (2 tokens each after 2x2 merging); row 1: a filler (labels ignored)
    ids = torch.tensor([[1, IMAGE, IMAGE, 2, IMAGE, IMAGE, 3], [1, IMAGE, IMAGE, 2, 0, 0, 0]])
    labels = torch.tensor([[IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 3], [IGNORE] * 7])
    grid = torch.tensor([[1, 2, 4], [1, 2, 4], [1, 2, 4]])
    embeds = torch.zeros(2, 7, 3)
    embeds[0, 1:3] = torch.tensor([5.0, 0.0, 1.0])  # the first image's tokens: one vector
    embeds[0, 4:6] = torch.tensor([-5.0, 2.0, 0.0])  # the second image's: another one
    embeds[1, 1:3] = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])  # the filler's differ, but do not count
    probe.expect({"input_ids": ids, "labels": labels, "image_grid_thw": grid})
    model.decoder(inputs_embeds=embeds)
    # each image collapsed to its own vector: 0, though the row's four image tokens together differ
    assert probe.take() == (0.0, 2)
    assert token_spread(embeds[0, [1, 2, 4, 5]]) > 0.5

    embeds[0, 4] = torch.tensor([1.0, 0.0, 0.0])
    embeds[0, 5] = torch.tensor([-1.0, 0.0, 0.0])
    probe.expect({"input_ids": ids, "labels": labels, "image_grid_thw": grid})
    model.decoder(inputs_embeds=embeds)
    model.decoder(inputs_embeds=embeds)  # no expect() before it: not counted
    total, images = probe.take()
    assert images == 2 and total == pytest.approx(token_spread(embeds[0, 4:6]))

    embeds[0, 4, 0] = float("nan")  # a non-finite image (its loss is skipped) is left out, not summed
    probe.expect({"input_ids": ids, "labels": labels, "image_grid_thw": grid})
    model.decoder(inputs_embeds=embeds)
    assert probe.take() == (0.0, 1)

    # image tokens that do not add up to the grids: a batch the model itself refuses; nothing is measured
    probe.expect({"input_ids": ids, "labels": labels, "image_grid_thw": grid[:1]})
    model.decoder(inputs_embeds=embeds)
    assert probe.take() == (0.0, 0)
    probe.close()


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

    probe = ImageTokenSpread(vl_model, vl_model.config.image_token_id, vl_model.config.vision_config.spatial_merge_size)
    try:
        probe.expect({**batch, "labels": labels})
        with torch.no_grad():
            vl_model(**batch)
            vl_model(**batch)  # no expect() before it (an evaluation forward): not counted
        total, rows = probe.take()
        assert rows == 1
        assert total == pytest.approx(token_spread(first_image), rel=1e-5)
        assert 0.05 < total <= 1.0  # a freshly built tower: its tokens differ
        assert probe.take() == (0.0, 0)
    finally:
        probe.close()
