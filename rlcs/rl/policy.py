"""From scored completions to a policy update.

``build_batch`` lays prompt + completion tokens out as right-padded rows with a
mask over the tokens the policy chose; ``policy_update`` runs the epochs and
mini-batches of the clipped objective with gradient accumulation over
micro-batches.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch

from rlcs.config import PolicyConfig
from rlcs.engine import Completion
from rlcs.guards import NonFiniteGuard
from rlcs.packing import batch_vision
from rlcs.rl.loss import aggregate, clipped_policy_loss, entropy_from_logits, kl_k3


@dataclass
class RolloutBatch:
    input_ids: torch.Tensor  # [N, L] prompt + completion, right-padded
    attention_mask: torch.Tensor  # [N, L]
    loss_mask: torch.Tensor  # [N, L-1] over predicted positions: 1 where a policy token is predicted
    advantages: torch.Tensor  # [N]
    # [N, L-1] like loss_mask: the engine's log-probability of each predicted policy token, where the
    # engine reports them (vLLM), NaN elsewhere; None when it reports none
    engine_logprobs: torch.Tensor | None = None
    # per row, the processor's tensors for its prompt's images (None for a text row); None for a text batch
    visions: list[dict | None] | None = None
    # an image-text model's filler row (rlcs.vision.image_filler), run with any micro-batch that has no image
    image_filler: dict | None = None

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def rows(self, index: torch.Tensor) -> RolloutBatch:
        engine = self.engine_logprobs[index] if self.engine_logprobs is not None else None
        visions = [self.visions[i] for i in index.tolist()] if self.visions is not None else None
        return RolloutBatch(self.input_ids[index], self.attention_mask[index], self.loss_mask[index],
                            self.advantages[index], engine, visions, self.image_filler)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """The forward pass's inputs: ids, mask and, for rows with images, their image tensors. With no
        image among the rows, an image-text model gets the filler row appended (its outputs come last and
        are not read), so every process runs the vision tower."""
        input_ids, attention, visions = self.input_ids, self.attention_mask, self.visions
        has_image = visions is not None and any(v is not None for v in visions)
        if not has_image and self.image_filler is not None:
            filler = self.image_filler["input_ids"]
            width = input_ids.shape[1]
            if len(filler) > width:
                raise ValueError(f"the image filler row ({len(filler)} tokens) is longer than the batch ({width})")
            # left-padded, so its last tokens sit in the positions whose logits are computed (logits_to_keep):
            # the tower's backward then runs on every attention implementation, unpadding ones included
            input_ids = torch.cat([input_ids, input_ids.new_tensor([[0] * (width - len(filler)) + filler])])
            attention = torch.cat([attention, attention.new_tensor([[0] * (width - len(filler)) + [1] * len(filler)])])
            # its per-token tensors padded on the left like its ids (per-image ones as they are)
            filler_vision = {k: (torch.nn.functional.pad(v, (width - len(filler), 0)) if v.ndim == 1 else v)
                             for k, v in self.image_filler.items() if k not in ("input_ids", "labels")}
            visions = [None] * len(self) + [filler_vision]
            has_image = True
        inputs = {"input_ids": input_ids, "attention_mask": attention}
        if has_image:
            width = input_ids.shape[1]
            vision = batch_vision(visions, [width] * len(visions), width)
            inputs.update({key: value.to(input_ids.device) for key, value in vision.items()})
        return inputs


def build_batch(completions: list[Completion], advantages: torch.Tensor, pad_id: int,
                device: torch.device, engine_logprobs: bool = False, image_filler: dict | None = None) -> RolloutBatch:
    """``engine_logprobs``: whether the engine reports log-probabilities (decided by the engine, not by
    the data, so every process logs the same metrics). ``image_filler``: an image-text model's
    (``rlcs.vision.image_filler``)."""
    width = max(len(c.prompt_ids) + len(c.token_ids) for c in completions)
    ids, attention, mask, engine = [], [], [], []
    nan = math.nan
    for c in completions:
        sequence = c.prompt_ids + c.token_ids
        pad = width - len(sequence)
        ids.append(sequence + [pad_id] * pad)
        attention.append([1] * len(sequence) + [0] * pad)
        # position t predicts token t+1: completion token k sits at len(prompt)+k, predicted from the one before
        mask.append([0] * (len(c.prompt_ids) - 1) + c.loss_mask + [0] * pad)
        reported = c.logprobs if c.logprobs is not None else [nan] * len(c.token_ids)
        engine.append([nan] * (len(c.prompt_ids) - 1) + reported + [nan] * pad)
    visions = [c.vision for c in completions]
    return RolloutBatch(torch.tensor(ids, device=device), torch.tensor(attention, device=device),
                        torch.tensor(mask, device=device, dtype=torch.float32), advantages.to(device),
                        torch.tensor(engine, device=device, dtype=torch.float32) if engine_logprobs else None,
                        visions if any(v is not None for v in visions) else None, image_filler)


def token_logprobs(model, batch: RolloutBatch, with_entropy: bool = False, entropy_grad: bool = False,
                   temperature: float = 1.0):
    """Log-probability of each next token ``[N, L-1]`` under the distribution the rollout sampled from
    (logits divided by the sampling ``temperature``), and the entropy at each position, differentiable
    only when ``entropy_grad``: as a logged metric it need not cost a backward pass. Zero where no
    completion token is predicted.

    Memory: logits are asked for only from the first position that predicts a completion token on
    (``logits_to_keep``), not for the prompts, and the fp32 log-softmax is taken one row at a time
    instead of as one ``[N, L, vocab]`` tensor."""
    n, width = batch.input_ids.shape
    predicting = batch.loss_mask.any(dim=0).nonzero()
    first = int(predicting[0]) if len(predicting) else width - 2
    keep = width - first  # logits for positions first .. width-1; the last one predicts nothing
    kwargs = {"logits_to_keep": keep} if _takes_logits_to_keep(model) else {}
    logits = model(**batch.model_inputs(), use_cache=False, **kwargs).logits
    logits = logits[:n, -keep:-1]  # an image filler row, if any, comes last and is not read
    targets = batch.input_ids[:, first + 1:]
    logp = batch.loss_mask.new_zeros((n, width - 1), dtype=torch.float32)
    logp[:, first:] = torch.stack([_row_logprobs(row, target, temperature) for row, target in zip(logits, targets)])
    # Zero wherever no completion token is predicted, whatever micro-batch this row was computed in (chunks
    # start at different positions, and exp(logp - old) must not see a prompt log-prob on one side only).
    predicted = batch.loss_mask.bool()
    logp = logp.masked_fill(~predicted, 0.0)
    entropy = None
    if with_entropy:
        entropy = batch.loss_mask.new_zeros((n, width - 1), dtype=torch.float32)
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            rows = logits if entropy_grad else logits.detach()
            entropy[:, first:] = torch.stack([entropy_from_logits(row.float() / temperature) for row in rows])
        entropy = entropy.masked_fill(~predicted, 0.0)
    return logp, entropy


def _row_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    scaled = logits.float() / temperature
    return scaled.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(scaled, dim=-1)


def _takes_logits_to_keep(model) -> bool:
    module = getattr(model, "module", model)  # a DeepSpeed engine or DDP wrapper holds the HF model
    return "logits_to_keep" in inspect.signature(getattr(module, "forward", module)).parameters


@torch.no_grad()
def logprobs_in_chunks(model, batch: RolloutBatch, micro_batch_size: int, temperature: float = 1.0) -> torch.Tensor:
    return torch.cat([token_logprobs(model, batch.rows(torch.arange(i, min(i + micro_batch_size, len(batch)))),
                                     temperature=temperature)[0]
                      for i in range(0, len(batch), micro_batch_size)])


def policy_update(accelerator, model, optimizer, scheduler, batch: RolloutBatch, config: PolicyConfig,
                  micro_batch_size: int, max_new_tokens: int, max_grad_norm: float, generator: torch.Generator,
                  ref_model=None, temperature: float = 1.0) -> dict[str, float]:
    """``temperature``: the rollout's sampling temperature; the ratio and the gradient are taken under the
    distribution the completions were sampled from (as TRL and verl do)."""
    n = len(batch)
    mini_size = n // config.mini_batches
    # Off-policy only when the same rollouts feed several optimizer steps; otherwise old == current.
    reuse = config.ppo_epochs > 1 or config.mini_batches > 1
    old_logp = logprobs_in_chunks(model, batch, micro_batch_size, temperature) if reuse else None
    ref_logp = logprobs_in_chunks(ref_model, batch, micro_batch_size, temperature) if ref_model is not None else None
    totals = {"loss": 0.0, "clip_frac_low": 0.0, "clip_frac_high": 0.0, "approx_kl": 0.0, "entropy": 0.0,
              "kl_ref": 0.0}
    micro_steps, grad_norms, nonfinite = 0, [], 0
    gaps: list[torch.Tensor] = []  # |engine - policy| log-probabilities, before this step's updates
    if old_logp is not None and batch.engine_logprobs is not None:
        gaps.append(_engine_gaps(old_logp, batch))
    guard = NonFiniteGuard(accelerator, model)
    token_mean = config.aggregation == "token"
    for _epoch in range(config.ppo_epochs):
        order = torch.randperm(n, generator=generator).to(batch.input_ids.device)
        for start in range(0, mini_size * config.mini_batches, mini_size):
            mini = order[start:start + mini_size]
            normalizer = _token_normalizer(accelerator, batch.loss_mask[mini]) if token_mean else None
            for m in range(0, mini_size, micro_batch_size):
                index = mini[m:m + micro_batch_size]
                micro = batch.rows(index)
                with accelerator.accumulate(model):
                    logp, entropy = token_logprobs(model, micro, with_entropy=True,
                                                   entropy_grad=config.entropy_coef > 0, temperature=temperature)
                    old = old_logp[index] if old_logp is not None else logp.detach()
                    if old_logp is None and micro.engine_logprobs is not None:
                        gaps.append(_engine_gaps(old, micro))
                    loss, stats = clipped_policy_loss(
                        logp, old, micro.advantages, micro.loss_mask, config.eps_low, config.eps_high,
                        config.dual_clip, config.aggregation, max_new_tokens, normalizer,
                    )
                    kl = torch.zeros(())
                    if ref_logp is not None:
                        kl = aggregate(kl_k3(logp, ref_logp[index]), micro.loss_mask, config.aggregation,
                                       max_new_tokens, normalizer)
                        loss = loss + config.kl_coef * kl
                    mean_entropy = aggregate(entropy, micro.loss_mask, "token")
                    if config.entropy_coef:
                        loss = loss - config.entropy_coef * mean_entropy
                    loss, skipped = guard.check(loss)
                    nonfinite += skipped
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        norm = float(accelerator.clip_grad_norm_(model.parameters(), max_grad_norm))
                        if math.isfinite(norm):
                            grad_norms.append(norm)
                    guard.step(optimizer)  # no update for a window that had a non-finite loss
                    if accelerator.sync_gradients:
                        scheduler.step()
                if skipped:
                    continue  # its loss, ratios and entropy are not numbers
                micro_steps += 1
                totals["loss"] += float(loss.detach())
                totals["clip_frac_low"] += stats.clip_frac_low
                totals["clip_frac_high"] += stats.clip_frac_high
                totals["approx_kl"] += stats.approx_kl
                totals["entropy"] += float(mean_entropy.detach())
                totals["kl_ref"] += float(kl.detach())
    metrics = {f"train/{key}": value / max(micro_steps, 1) for key, value in totals.items()}
    if ref_model is None:
        metrics.pop("train/kl_ref")
    metrics["train/grad_norm"] = sum(grad_norms) / max(len(grad_norms), 1)
    metrics["train/nonfinite_skipped"] = nonfinite
    if batch.engine_logprobs is not None:  # the same keys on every process: the metrics are reduced together
        metrics.update(_gap_metrics(accelerator, torch.cat(gaps) if gaps else torch.zeros(0)))
    return metrics


def _gap_metrics(accelerator, gaps: torch.Tensor) -> dict[str, float]:
    """The training-inference mismatch over every process's policy tokens: the mean and the largest
    |engine - policy| log-probability (the same numbers on every process)."""
    local = torch.tensor([float(gaps.sum()), float(gaps.numel()), float(gaps.max()) if gaps.numel() else 0.0],
                         dtype=torch.float64, device=accelerator.device)
    every = accelerator.gather(local).reshape(-1, 3)
    count = float(every[:, 1].sum())
    return {"train/engine_logprob_gap_mean": float(every[:, 0].sum()) / count if count else 0.0,
            "train/engine_logprob_gap_max": float(every[:, 2].max())}


def _engine_gaps(policy_logp: torch.Tensor, batch: RolloutBatch) -> torch.Tensor:
    """|engine - policy| log-probability at every policy token the engine reported."""
    engine = batch.engine_logprobs
    reported = (batch.loss_mask > 0) & torch.isfinite(engine)
    return (engine[reported] - policy_logp.detach()[reported].float()).abs()


def _token_normalizer(accelerator, mini_batch_mask: torch.Tensor) -> float:
    """DAPO's token mean over a mini-batch that spans micro-batches and processes: its token count on all
    processes, divided by the number of micro-batch losses whose gradients get averaged (accumulation
    steps times processes), so the averaged gradient is that of (sum of token losses) / (token count)."""
    tokens = accelerator.reduce(mini_batch_mask.sum().reshape(1).double(), reduction="sum").item()
    averaged = accelerator.gradient_accumulation_steps * accelerator.num_processes
    return max(tokens, 1.0) / averaged
