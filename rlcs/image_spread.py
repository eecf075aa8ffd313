"""Whether an image-text model's decoder is still shown its images: the spread of its image tokens.

The decoder is given one embedding per merged patch (the projector's output, at the image placeholder
positions). If training turns those into one vector shared by every token of an image, the decoder is
told nothing about the image and can only answer from the text. Its loss keeps falling, since the text
is still learnt, so no other metric shows it. At lr 2e-3 the tiny GLM-4Vs of docs/benchmarks.md
(``image_spread``) go from about 0.4 to near 0 within a few hundred image-caption steps, in some runs to 0.001
or below; at 5e-4, the tiny-vl recipe's rate, the spread stays near 0.6.
"""

from __future__ import annotations

import torch

from rlcs.packing import IGNORE


def _spread(features: torch.Tensor) -> torch.Tensor:
    features = features.detach().float()
    rms = features.pow(2).mean().sqrt()
    spread = features.std(dim=0, unbiased=False).mean() / rms
    return torch.where(rms == 0, torch.zeros_like(spread), spread)  # a NaN stays NaN


def token_spread(features: torch.Tensor) -> float:
    """The standard deviation across tokens (rows) of each feature, averaged over the features and
    divided by the root mean square of all entries. It lies in [0, 1]: near 1 when the tokens differ as
    much as they are large, 0 when every token is the same vector. ``features``: (tokens, dim), at least
    2 tokens."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"token_spread needs (tokens >= 2, dim) features, got shape {tuple(features.shape)}")
    return _spread(features).item()


class ImageTokenSpread:
    """Mean ``token_spread`` of each trained image's tokens, read off what the decoder is given.

    Call ``expect(batch)`` before the training forward of each micro-batch. Images of rows whose labels
    are all ignored (the blank filler image of a batch without images, ``rlcs.vision.image_filler``) are
    left out, and so is an image whose spread is not finite (that forward's loss is skipped too). Each
    image of a row is measured on its own tokens: a row whose images each collapsed to their own vector
    would otherwise look spread. Forwards with no ``expect`` before them (evaluation) are not counted."""

    def __init__(self, model: torch.nn.Module, image_token_id: int, merge_size: int = 1):
        self.image_token_id = image_token_id
        self.merge_size = merge_size
        self._total = torch.zeros((), dtype=torch.float64)
        self._images = torch.zeros((), dtype=torch.float64)
        # per trained row with images: (row, positions of its image tokens, token count of each image)
        self._expected: list[tuple[int, torch.Tensor, list[int]]] | None = None
        self._shape: tuple[int, ...] = ()
        self._handle = model.get_decoder().register_forward_pre_hook(self._read, with_kwargs=True)

    @classmethod
    def for_model(cls, model: torch.nn.Module) -> ImageTokenSpread | None:
        """The probe for an image-text model, from its config's image token and merge size; None for a model
        whose config names no image token."""
        image_token_id = getattr(model.config, "image_token_id", None)
        if image_token_id is None:
            return None
        merge_size = getattr(getattr(model.config, "vision_config", None), "spatial_merge_size", 1)
        return cls(model, image_token_id, merge_size)

    def expect(self, batch: dict[str, torch.Tensor]) -> None:
        """Which images to measure in the next forward: those of rows with labels, split by their grids."""
        self._expected = None
        grid = batch.get("image_grid_thw")
        if grid is None:
            return
        per_image = (grid.prod(dim=-1) // self.merge_size ** 2).tolist()
        is_image = batch["input_ids"] == self.image_token_id
        trained = (batch["labels"] != IGNORE).any(dim=1).tolist()
        expected, start = [], 0
        for row, count in enumerate(is_image.sum(dim=1).tolist()):
            sizes, taken = [], 0
            while taken < count and start < len(per_image):
                sizes.append(per_image[start])
                taken += per_image[start]
                start += 1
            if taken != count:  # a layout the model itself refuses: measure nothing
                return
            if trained[row] and sizes:
                expected.append((row, is_image[row].nonzero().flatten(), sizes))
        self._expected, self._shape = expected, tuple(batch["input_ids"].shape)

    def _read(self, module, args, kwargs) -> None:
        expected, self._expected = self._expected, None
        embeds = kwargs.get("inputs_embeds")
        if not expected or embeds is None or tuple(embeds.shape[:2]) != self._shape:
            return
        for row, positions, sizes in expected:
            tokens = embeds[row, positions.to(embeds.device)]
            for image in torch.split(tokens, sizes):
                if image.shape[0] < 2:
                    continue
                spread = _spread(image).double()
                if self._total.device != spread.device:  # sums stay where the model runs: no sync per image
                    self._total, self._images = self._total.to(spread.device), self._images.to(spread.device)
                finite = torch.isfinite(spread)
                self._total += torch.where(finite, spread, torch.zeros_like(spread))
                self._images += finite.double()

    def take(self) -> tuple[float, int]:
        """The sum of the spreads and the number of images since the last ``take``."""
        taken = (float(self._total), int(self._images))
        self._total.zero_()
        self._images.zero_()
        return taken

    def close(self) -> None:
        self._handle.remove()
