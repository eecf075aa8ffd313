"""The causal-LM training loop shared by pretraining and SFT.

The stages differ only in how they turn data into rows (packed documents vs.
prompt-masked conversations); from rows on, the loop is this one, read top to
bottom: batch -> forward -> backward (accumulated) -> clip -> step -> log /
eval / checkpoint. Each epoch visits the rows in an order fixed by the seed and
the epoch number, so a resumed run skips exactly the batches it had consumed.
"""

from __future__ import annotations

import json
import math
import random
import time
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from rlcs.checkpoint import save_model
from rlcs.config import StageRecipe
from rlcs.data import DataError
from rlcs.guards import NonFiniteGuard
from rlcs.housekeeping import RunHousekeeping
from rlcs.image_spread import ImageTokenSpread
from rlcs.metrics import progress_bar
from rlcs.optim import build_optimizer, build_scheduler, unwrap_optimizer
from rlcs.packing import IGNORE, PackingStats, collate, count_tokens
from rlcs.runtime import parameter_counts
from rlcs.vision import image_filler, pixel_inputs
from rlcs.zero3 import fill_bucket_sizes


def train_causal_lm(
    accelerator: Accelerator,
    recipe: StageRecipe,
    stage: str,
    model,
    tokenizer,
    train_rows: list[dict],
    eval_rows: list[dict] | None,
    packing_stats: PackingStats,
    processor=None,
) -> Path:
    """``processor``: an image-text model's, saved beside the model in place of the bare tokenizer."""
    if not train_rows:  # an epoch of no batches would loop forever
        raise DataError(f"{recipe.data.train}: no training rows left ({packing_stats.dropped_too_long} longer than "
                        f"data.seq_len={recipe.data.seq_len} tokens were skipped)")
    train_cfg = recipe.train
    output_dir = Path(recipe.output_dir)
    # an image-text model's batches always hold an image (rlcs.vision.image_filler; its tokens are counted
    # in the throughput metrics, its labels ignored)
    collate_fn = partial(collate, pad_id=tokenizer.pad_token_id,
                         image_filler=image_filler(processor) if processor is not None else None,
                         load_pixels=pixel_inputs(processor) if processor is not None else None)

    def epoch_loader(epoch: int):
        order = list(range(len(train_rows)))
        random.Random(f"{recipe.seed}:{epoch}").shuffle(order)
        rows = [train_rows[i] for i in order]
        return accelerator.prepare(DataLoader(rows, batch_size=train_cfg.micro_batch_size, collate_fn=collate_fn))

    if eval_rows and train_cfg.eval_max_batches:
        # the rows of the first eval_max_batches batches of every process (each takes every n-th batch), cut
        # before the loader is made: leaving a prepared loader early keeps it registered with accelerate, whose
        # gradient accumulation then no longer steps at the end of each training epoch
        eval_rows = eval_rows[: train_cfg.eval_max_batches * train_cfg.micro_batch_size * accelerator.num_processes]
    eval_loader = (DataLoader(eval_rows, batch_size=train_cfg.micro_batch_size, collate_fn=collate_fn)
                   if eval_rows else None)
    optimizer = build_optimizer(model, recipe.optim)
    fill_bucket_sizes(accelerator, model)
    model, optimizer = accelerator.prepare(model, optimizer)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    steps_per_epoch = max(1, math.ceil(len(epoch_loader(0)) / train_cfg.grad_accum))
    total_steps = train_cfg.max_steps or max(1, math.ceil(train_cfg.epochs * steps_per_epoch))
    scheduler = build_scheduler(unwrap_optimizer(optimizer), recipe.optim, total_steps)
    saved_with = processor if processor is not None else tokenizer
    housekeeping = RunHousekeeping(accelerator, recipe, stage, model, saved_with, [scheduler])
    state, logger = housekeeping.state, housekeeping.logger
    _write_run_info(accelerator, model, output_dir, stage, total_steps, steps_per_epoch, packing_stats)

    model.train()
    window = _new_window()
    grad_norm = None
    guard = NonFiniteGuard(accelerator, model)
    spread = ImageTokenSpread.for_model(accelerator.unwrap_model(model)) if processor is not None else None
    progress = progress_bar(total_steps, stage, accelerator.is_local_main_process)
    progress.update(state.step)
    while state.step < total_steps:
        loader = epoch_loader(state.epoch)
        if state.batches_in_epoch:
            loader = accelerator.skip_first_batches(loader, state.batches_in_epoch)
        for batch in loader:
            with accelerator.accumulate(model):
                if spread is not None:
                    spread.expect(batch)
                loss, skipped = guard.check(model(**batch, use_cache=False).loss)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), recipe.optim.max_grad_norm)
                guard.step(optimizer)  # no update for a window that had a non-finite loss
            state.batches_in_epoch += 1
            real, pad = count_tokens(batch, tokenizer.pad_token_id)
            window["loss_sum"] += 0.0 if skipped else loss.detach().float().item()
            window["micro"] += 0 if skipped else 1
            window["real"] += real
            window["pad"] += pad
            housekeeping.count_nonfinite(skipped)
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            state.step += 1
            progress.update(1)
            if state.step % train_cfg.log_every == 0 or state.step == total_steps:
                window["spread_sum"], window["spread_images"] = spread.take() if spread is not None else (0.0, 0)
                metrics = _window_metrics(accelerator, window, grad_norm, scheduler.get_last_lr()[0])
                metrics["train/epoch"] = state.epoch + state.batches_in_epoch / max(len(loader), 1)
                metrics["train/nonfinite_skipped"] = state.nonfinite_skipped
                logger.log(metrics, state.step)
                if "train/loss" in metrics:
                    progress.set_postfix(loss=f"{metrics['train/loss']:.4f}")
                window = _new_window()
            if eval_loader is not None and (state.step % train_cfg.eval_every == 0 or state.step == total_steps):
                logger.log({"eval/loss": evaluate_loss(accelerator, model, eval_loader)},
                           state.step)
                model.train()
            housekeeping.end_of_step(last=state.step >= total_steps)
            if state.step >= total_steps:
                break
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
    progress.close()
    if spread is not None:
        spread.close()
    final = save_model(accelerator, model, saved_with, output_dir / "model", extra={"step": state.step, "stage": stage})
    housekeeping.close()
    return final


def _new_window() -> dict:
    return {"loss_sum": 0.0, "micro": 0, "real": 0, "pad": 0, "spread_sum": 0.0, "spread_images": 0,
            "start": time.time()}


def _window_metrics(accelerator, window, grad_norm, lr) -> dict[str, float]:
    """Averages over the logging window, summed across ranks."""
    elapsed = max(time.time() - window["start"], 1e-9)
    totals = accelerator.reduce(
        torch.tensor([window["loss_sum"], window["micro"], window["real"], window["pad"], window["spread_sum"],
                      window["spread_images"]],
                     dtype=torch.float64, device=accelerator.device),
        reduction="sum",
    ).tolist()
    loss_sum, micro, real, pad, spread_sum, spread_images = totals
    metrics = {
        "train/lr": lr,
        "train/tokens_per_s": real / elapsed,
        "train/padding_frac": pad / max(real + pad, 1),
        "time/step_s": elapsed,
    }
    if micro:
        metrics["train/loss"] = loss_sum / micro
    if spread_images:  # image-text models: near 0 means the decoder is no longer shown the images (rlcs.image_spread)
        metrics["train/image_token_spread"] = spread_sum / spread_images
    if grad_norm is not None and math.isfinite(float(grad_norm)):
        metrics["train/grad_norm"] = float(grad_norm)
    return metrics


@torch.no_grad()
def evaluate_loss(accelerator: Accelerator, model, loader) -> float:
    """Token-weighted mean loss over the evaluation rows, across all ranks (the whole loader: see
    ``eval_max_batches`` where it is made)."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    tokens = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    for batch in loader:
        loss = model(**batch, use_cache=False).loss
        counted = (batch["labels"][:, 1:] != IGNORE).sum()
        loss_sum += loss.double() * counted
        tokens += counted
    loss_sum, tokens = accelerator.reduce(torch.stack([loss_sum, tokens]), reduction="sum").tolist()
    return loss_sum / max(tokens, 1.0)


def _write_run_info(accelerator, model, output_dir: Path, stage: str, total_steps: int, steps_per_epoch: int,
                    stats: PackingStats) -> None:
    full, local = parameter_counts(model)
    per_rank = accelerator.gather(torch.tensor([local], device=accelerator.device)).tolist()
    if not accelerator.is_main_process:
        return
    info = {
        "stage": stage,
        "num_processes": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
        "parameters": full,
        "parameters_per_rank": per_rank,
        "total_steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "data": {"sequences": stats.sequences, "rows": stats.blocks, "real_tokens": stats.real_tokens,
                 "pad_tokens": stats.pad_tokens, "padding_share": stats.padding_share,
                 "dropped_too_long": stats.dropped_too_long},
    }
    (output_dir / "run_info.json").write_text(json.dumps(info, indent=2))
    shares = ", ".join(f"{n / full:.0%}" for n in per_rank)
    print(f"[{stage}] {full / 1e6:.2f}M parameters on {accelerator.num_processes} process(es), "
          f"held per rank: {shares}; {total_steps} steps; {stats.blocks} rows, "
          f"padding {stats.padding_share:.1%}, dropped too long: {stats.dropped_too_long}")
