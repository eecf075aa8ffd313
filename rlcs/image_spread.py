"""Whether an image-text model's decoder is still shown its images: the spread of its image tokens.

The decoder is given one embedding per merged patch (the projector's output, at the image placeholder
positions). If training turns those into one vector shared by every token of an image, the decoder is
told nothing about the image and learns to answer from the text alone. The loss keeps falling, since
the text is still learnt, so no other metric shows it. On the tiny GLM-4V with a 128-wide decoder,
a projector learning rate of 2e-3 did exactly that within 800 pretraining steps; at 5e-4 the tokens
kept their spread (docs/vision.md, "Image tokens that stop varying").
"""

from __future__ import annotations

import torch

from rlcs.packing import IGNORE


def token_spread(features: torch.Tensor) -> float:
    """The standard deviation across tokens (rows) of each feature, averaged over the features and
    divided by the root mean square of all entries. It is about 1 when the tokens differ as much as they
    are large, and 0 when every token is the same vector. ``features``: (tokens, dim), at least 2 tokens."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"token_spread needs (tokens >= 2, dim) features, got shape {tuple(features.shape)}")
    features = features.detach().float()
    rms = features.pow(2).mean().sqrt()
    if rms == 0:
        return 0.0
    return (features.std(dim=0, unbiased=False).mean() / rms).item()


class ImageTokenSpread:
    """Mean ``token_spread`` of each trained row's image tokens, read off what the decoder is given.

    Call ``expect(batch)`` before the training forward of each micro-batch. Rows whose labels are all
    ignored (the blank filler image of a batch without images, ``rlcs.vision.image_filler``) are left
    out. Forwards with no ``expect`` before them (evaluation) are not counted."""

    def __init__(self, model: torch.nn.Module, image_token_id: int):
        self.image_token_id = image_token_id
        self.total = 0.0
        self.rows = 0
        self._mask: torch.Tensor | None = None
        self._handle = model.get_decoder().register_forward_pre_hook(self._read, with_kwargs=True)

    def expect(self, batch: dict[str, torch.Tensor]) -> None:
        trained = (batch["labels"] != IGNORE).any(dim=1, keepdim=True)
        self._mask = (batch["input_ids"] == self.image_token_id) & trained

    def _read(self, module, args, kwargs) -> None:
        mask, self._mask = self._mask, None
        embeds = kwargs.get("inputs_embeds")
        if mask is None or embeds is None or tuple(embeds.shape[:2]) != tuple(mask.shape):
            return
        for row in range(embeds.shape[0]):
            tokens = embeds[row][mask[row].to(embeds.device)]
            if tokens.shape[0] >= 2:
                self.total += token_spread(tokens)
                self.rows += 1

    def take(self) -> tuple[float, int]:
        """The sum of the spreads and the number of rows since the last ``take``."""
        taken = (self.total, self.rows)
        self.total, self.rows = 0.0, 0
        return taken

    def close(self) -> None:
        self._handle.remove()
