"""`rlcs rl`: group-relative policy optimisation on verifiable rewards.

One step, as in DESIGN.md's data flow:
    sampler.pick -> rollout.generate (G per example) -> rewards.score ->
    group advantages -> sampler.update -> policy update -> log / eval / checkpoint
Every process picks the same examples (identically seeded samplers fed the same
gathered outcomes), rolls out its share, and trains on its share.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from accelerate.utils import gather_object

from rewards.router import RewardRouter
from rlcs.chat import example_request
from rlcs.checkpoint import save_model
from rlcs.config import RLRecipe, dump_recipe
from rlcs.curriculum.interface import GroupOutcome, carries_signal, state_digest
from rlcs.curriculum.registry import build_sampler
from rlcs.data import DataError, load_examples
from rlcs.engine import SamplingParams, build_engine, greedy
from rlcs.evaluate import metrics_from_records, score_eval
from rlcs.housekeeping import RunHousekeeping
from rlcs.metrics import progress_bar, truncate_after
from rlcs.optim import build_optimizer, build_scheduler, unwrap_optimizer
from rlcs.rl.advantages import group_advantages
from rlcs.rl.failures import FailureBudget, RewardFailures
from rlcs.rl.policy import build_batch, policy_update
from rlcs.rl.rollout import Group, rollout_round
from rlcs.runtime import (
    image_text_processor,
    load_tokenizer,
    load_trainable_model,
    make_accelerator,
    parameter_counts,
)
from rlcs.vision import image_filler
from rlcs.zero3 import fill_bucket_sizes, reference_model


def run(recipe: RLRecipe) -> Path:
    accelerator = make_accelerator(recipe, grad_accum=1, micro_batch_size=recipe.train.micro_batch_size)
    world, rank = accelerator.num_processes, accelerator.process_index
    cfg, G = recipe.rl, recipe.rollout.group_size
    micro_per_mini = _check_batch_shape(recipe, world)
    accelerator.gradient_accumulation_steps = micro_per_mini  # known only now that the world size is
    output_dir = Path(recipe.output_dir)
    if accelerator.is_main_process:
        dump_recipe(recipe, output_dir / "recipe.yaml")

    processor = image_text_processor(recipe.model)  # for an image-text model: rows may carry images
    examples = load_examples(recipe.data.train, recipe.data.split, images=processor is not None)
    if recipe.sampler.name == "rlcs" and len(examples) < recipe.rl.batch_size:
        # rlcs picks each example at most once a step (uniform and dapo cycle through epochs): a short batch
        # would let optimizer steps straddle RL steps
        raise DataError(f"{recipe.data.train}: {len(examples)} examples, fewer than rl.batch_size="
                        f"{recipe.rl.batch_size} (groups per optimizer batch), which the rlcs sampler needs; lower "
                        "rl.batch_size or add data")
    eval_examples = _eval_subset(recipe, processor is not None)
    router = RewardRouter.from_config({d: e.model_dump() for d, e in recipe.rewards.items()},
                                      examples + eval_examples, recipe.reward_workers.workers,
                                      recipe.reward_workers.timeout_s, recipe.reward_workers.memory_mb)
    sampler = build_sampler(recipe.sampler, examples, G, recipe.seed)
    tokenizer = load_tokenizer(recipe.model)
    policy = load_trainable_model(recipe.model)
    optimizer = build_optimizer(policy, recipe.optim)
    fill_bucket_sizes(accelerator, policy)
    policy, optimizer = accelerator.prepare(policy, optimizer)
    if accelerator.gradient_accumulation_steps != micro_per_mini:  # a DeepSpeed JSON with its own value
        raise ValueError(f"gradient_accumulation_steps is {accelerator.gradient_accumulation_steps} after prepare, but "
                         f"one optimizer step per mini-batch needs {micro_per_mini}: set it to \"auto\" in the "
                         "DeepSpeed config")
    ref_model = reference_model(recipe.model, accelerator) if cfg.kl_coef > 0 else None
    scheduler = build_scheduler(unwrap_optimizer(optimizer), recipe.optim,
                                recipe.train.steps * cfg.ppo_epochs * cfg.mini_batches)
    filler = image_filler(processor) if processor is not None else None  # the vision tower runs in every batch
    engine = build_engine(recipe.rollout, policy, tokenizer, accelerator, recipe.model, recipe.seed,
                          processor=processor)
    sampling = SamplingParams.from_rollout(recipe.rollout)
    saved_with = processor if processor is not None else tokenizer  # what is saved beside the model
    housekeeping = RunHousekeeping(accelerator, recipe, "rl", policy, saved_with, [scheduler, sampler])
    if housekeeping.resumed_from is not None:
        engine.sync_weights()  # the resumed policy is not the checkpoint the engine loaded its weights from
    housekeeping.on_close.append(router.close)
    state, logger = housekeeping.state, housekeeping.logger
    if housekeeping.resumed_from is not None and accelerator.is_main_process:
        for name in ("picks.jsonl", "completions.jsonl", "curriculum_items.jsonl"):
            truncate_after(output_dir / name, state.step)
    evaluate = partial(_log_eval, accelerator, engine, tokenizer, eval_examples, recipe, router, sampling, logger)
    if housekeeping.resumed_from is None:
        evaluate(step=0)

    failure_budget = FailureBudget(recipe.reward_failures.max_share, recipe.reward_failures.steps_in_row)
    progress = progress_bar(recipe.train.steps, "rl", accelerator.is_local_main_process)
    progress.update(state.step)
    for step in range(state.step + 1, recipe.train.steps + 1):
        started = time.time()
        groups, outcomes, reward_seconds = _rollouts(sampler, engine, router, tokenizer, sampling, cfg, G, rank, world)
        rollout_done = time.time()
        try:
            failure_budget.check(router, sum(len(g.rewards) for g in groups), step)
        except RewardFailures:
            housekeeping.close()
            raise
        sampler.update(outcomes)
        state.rollouts_spent += G * len(outcomes)
        kept = _my_share(sampler.select(outcomes, cfg.batch_size), groups, rank, world)
        advantages = group_advantages(torch.tensor([g.rewards for g in kept]), scale_by_std=cfg.scale_adv_by_std)
        batch = build_batch([c for g in kept for c in g.completions], advantages.flatten(),
                            tokenizer.pad_token_id, accelerator.device, engine.reports_logprobs, filler)
        # A generator per (seed, process, step): mini-batch order survives a resume without saved state.
        generator = torch.Generator().manual_seed(recipe.seed * 1_000_003 + rank * 7_919 + step)
        engine.release_memory()
        train_metrics = policy_update(accelerator, policy, optimizer, scheduler, batch, cfg,
                                      recipe.train.micro_batch_size, sampling.max_new_tokens,
                                      recipe.optim.max_grad_norm, generator, ref_model, sampling.temperature)
        engine.sync_weights()
        timings = {"time/rollout_s": rollout_done - started - reward_seconds, "time/reward_s": reward_seconds,
                   "time/train_s": time.time() - rollout_done, "total": time.time() - started}
        state.step = step
        housekeeping.count_nonfinite(int(train_metrics.pop("train/nonfinite_skipped")))
        progress.update(1)
        out_of_budget = recipe.train.max_rollouts is not None and state.rollouts_spent >= recipe.train.max_rollouts
        last = step == recipe.train.steps or out_of_budget
        _record_step(accelerator, recipe, logger, progress, sampler, router, state, groups, outcomes, kept,
                     train_metrics, timings, scheduler.get_last_lr()[0], last)
        if recipe.train.eval_every and step % recipe.train.eval_every == 0 and not last:
            evaluate(step=step)
        housekeeping.end_of_step(last)
        if out_of_budget:
            break

    progress.close()
    evaluate(step=state.step)
    _write_run_info(accelerator, policy, sampler, recipe, micro_per_mini)
    final = save_model(accelerator, policy, saved_with, output_dir / "model",
                       extra={"step": state.step, "stage": "rl", "rollouts": state.rollouts_spent})
    housekeeping.close()
    return final


def _rollouts(sampler, engine, router, tokenizer, sampling, cfg, G: int, rank: int, world: int):
    """One step's rollouts: pick -> generate G each -> score, in as many rounds as the sampler asks for
    (DAPO refills). (this process's groups, every process's outcomes in the same order everywhere,
    seconds spent scoring)."""
    groups: list[Group] = []
    outcomes: list[GroupOutcome] = []
    count, reward_seconds = _multiple_of(sampler.rollout_count(cfg.batch_size), world), 0.0
    while count:
        new_groups, seconds = rollout_round(sampler.pick(count), len(outcomes), engine, router, tokenizer,
                                            sampling, G, rank, world)
        outcomes += gather_object([g.outcome(cfg.pass_threshold) for g in new_groups])
        groups += new_groups
        reward_seconds += seconds
        count = _multiple_of(sampler.refill(outcomes, cfg.batch_size), world)
    return groups, outcomes, reward_seconds


def _record_step(accelerator, recipe: RLRecipe, logger, progress, sampler, router, state, groups, outcomes, kept,
                 train_metrics, timings, lr: float, last: bool) -> None:
    """Metrics, the picks, completions and curriculum extremes of a step."""
    step = state.step
    if step % recipe.train.log_every == 0 or last:
        metrics = _step_metrics(accelerator, groups, outcomes, kept, router, sampler, state, train_metrics,
                                timings, lr)
        logger.log(metrics, step)
        progress.set_postfix(reward=f"{metrics['reward/mean']:.3f}")
        _check_ranks_agree(accelerator, sampler, step)
    if accelerator.is_main_process:
        _append_jsonl(Path(recipe.output_dir) / "picks.jsonl", {"step": step, "ids": [o.example_id for o in outcomes]})
    if step % recipe.train.completions_every == 0:
        _log_completions(accelerator, recipe, logger, kept, step)
        _log_extremes(accelerator, recipe, sampler, step)


def _step_metrics(accelerator, groups, outcomes, kept, router, sampler, state, train_metrics, timings,
                  lr: float) -> dict[str, float]:
    """Everything logged for one step, gathered from every process."""
    rollout_stats = gather_object([(len(c.loss_mask), c.truncated, c.forced) for g in groups for c in g.completions])
    kept_informative = gather_object([int(carries_signal(g.rewards)) for g in kept])
    return {
        **_reward_metrics(outcomes),
        **_sum_dicts(gather_object([router.metrics()])),
        **_rollout_metrics(rollout_stats, outcomes),
        "rollout/groups": len(outcomes),
        "rollout/rollouts_total": state.rollouts_spent,
        "train/nonfinite_skipped": state.nonfinite_skipped,
        "curriculum/batch_informative_frac": sum(kept_informative) / len(kept_informative),
        **_reduce_mean(accelerator, train_metrics),
        **sampler.metrics(),
        **{key: value for key, value in timings.items() if key.startswith("time/")},
        "time/tokens_per_s": sum(n for n, _, _ in rollout_stats) / max(timings["total"], 1e-9),
        "train/lr": lr,
    }


def _multiple_of(count: int, world: int) -> int:
    """Round up so every process rolls out the same number of examples."""
    return -(-count // world) * world


def _my_share(selected: list[int], groups: list[Group], rank: int, world: int) -> list[Group]:
    """The selected groups were rolled out wherever they were; deal them out evenly so every
    process trains on the same number of groups (ZeRO-3 needs equal forward/backward counts)."""
    wanted = set(selected)
    everyone = gather_object([g for g in groups if g.position in wanted])
    by_position = {g.position: g for g in everyone}
    return [by_position[i] for i in selected][rank::world]


def _check_batch_shape(recipe: RLRecipe, world: int) -> int:
    """Every process must run the same number of forward/backward passes (ZeRO-3 collectives)."""
    cfg = recipe.rl
    if cfg.batch_size % world:
        raise ValueError(f"rl.batch_size={cfg.batch_size} must be divisible by the {world} processes")
    sequences = cfg.batch_size // world * recipe.rollout.group_size
    if sequences % cfg.mini_batches:
        raise ValueError(f"{sequences} sequences per process do not split into rl.mini_batches={cfg.mini_batches}")
    mini = sequences // cfg.mini_batches
    if mini % recipe.train.micro_batch_size:
        raise ValueError(f"a mini-batch of {mini} sequences per process does not split into "
                         f"train.micro_batch_size={recipe.train.micro_batch_size}")
    return mini // recipe.train.micro_batch_size


def _eval_subset(recipe: RLRecipe, images: bool = False) -> list[dict]:
    if not recipe.data.eval:
        return []
    examples = load_examples(recipe.data.eval, images=images)
    limit = recipe.train.eval_max_examples
    if limit and len(examples) > limit:
        # A fixed draw, not the run's seed: runs with different seeds are scored on the same items.
        examples = random.Random(0).sample(examples, limit)
    return examples


def _sum_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for d in dicts:
        for key, value in d.items():
            total[key] = total.get(key, 0) + value
    return total


def _reward_metrics(outcomes: list[GroupOutcome]) -> dict[str, float]:
    metrics, by_domain = {}, {}
    for outcome in outcomes:
        by_domain.setdefault(outcome.domain, []).extend(outcome.rewards)
    everything = [r for values in by_domain.values() for r in values]
    metrics["reward/mean"] = sum(everything) / len(everything)
    for domain, values in sorted(by_domain.items()):
        metrics[f"reward/{domain}/mean"] = sum(values) / len(values)
    return metrics


def _rollout_metrics(stats: list[tuple[int, bool, bool]], outcomes: list[GroupOutcome]) -> dict[str, float]:
    lengths = [n for n, _, _ in stats]
    completions = sum(len(o.rewards) for o in outcomes)
    return {
        "rollout/pass_rate": sum(o.passes for o in outcomes) / completions,
        "rollout/zero_variance_frac": sum(not o.informative for o in outcomes) / len(outcomes),
        "rollout/length_mean": sum(lengths) / len(lengths),
        "rollout/length_max": max(lengths),
        "rollout/truncated_frac": sum(t for _, t, _ in stats) / len(stats),
        "rollout/forced_answer_frac": sum(f for _, _, f in stats) / len(stats),
    }


def _reduce_mean(accelerator, metrics: dict[str, float]) -> dict[str, float]:
    keys = sorted(metrics)
    values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=accelerator.device)
    return dict(zip(keys, accelerator.reduce(values, reduction="mean").tolist()))


def _check_ranks_agree(accelerator, sampler, step: int) -> None:
    digests = gather_object([state_digest(sampler)])
    if len(set(digests)) > 1:
        raise RuntimeError(f"step {step}: processes disagree on the sampler state {digests}; "
                           "the data or seeds differ between processes")


@torch.no_grad()
def _log_eval(accelerator, engine, tokenizer, examples, recipe: RLRecipe, router, sampling, logger,
              step: int) -> None:
    """Held-out scores (evaluate.py): greedy scored by the verifiers and by exact match, and pass@1 of
    ``eval_samples`` completions at the rollout temperature. Every process takes an equal share (padded
    with repeats that are not counted), so all run the same generate calls in lockstep under ZeRO-3."""
    if not examples:
        return
    mine, counted = equal_share(examples, accelerator.process_index, accelerator.num_processes)
    prompts = [example_request(tokenizer, e) for e in mine]
    max_new_tokens = recipe.train.eval_max_new_tokens
    # Eval draws from random streams of its own, the same at every eval, and leaves the run's as it found
    # them (the vLLM engine draws request seeds even for greedy calls): turning eval on or off, or evaluating
    # more often, does not shift the random numbers the rollouts draw, and pass@1 moves between evals only
    # because the policy did.
    device = accelerator.device
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device],
                               device_type="cuda" if device.type == "cpu" else device.type):
        torch.manual_seed(recipe.seed * 1_000_003 + accelerator.process_index * 7_919 + 999_983)
        greedy_texts = [c.text for c in engine.generate(prompts, 1, greedy(max_new_tokens))]
        sampled = None
        n = recipe.train.eval_samples
        if n:
            completions = engine.generate(prompts, n, replace(sampling, max_new_tokens=max_new_tokens))
            sampled = [[c.text for c in completions[j * n:(j + 1) * n]] for j in range(len(mine))]
    with router.counted_apart() as failures:  # held-out failures are the eval's, not the training reward's
        _, records = score_eval(mine, greedy_texts, router.score, sampled)
    records, failures = gather_object(records[:counted]), sum(gather_object([sum(failures.values())]))
    metrics = metrics_from_records(records)
    metrics["eval/examples"] = len(records)
    metrics["eval/verifier_failures"] = failures
    logger.log(metrics, step)


def equal_share(items: list, rank: int, world: int) -> tuple[list, int]:
    """(this process's share, how many of its first items are real): every process gets the same number
    of items, the list repeated cyclically to fill the last shares; repeats are not counted."""
    share = -(-len(items) // world)
    padded = [items[i % len(items)] for i in range(share * world)]
    return padded[rank * share:(rank + 1) * share], min(share, max(len(items) - rank * share, 0))


def _log_completions(accelerator, recipe, logger, groups: list[Group], step: int) -> None:
    rows = [[step, g.example["id"], g.example["domain"], c.text, str(g.example["answer"]), float(r)]
            for g in groups for c, r in zip(g.completions, g.rewards)][: recipe.train.completions_logged]
    rows = gather_object(rows)
    if not accelerator.is_main_process:
        return
    columns = ["step", "id", "domain", "completion", "answer", "reward"]
    for row in rows:
        _append_jsonl(Path(recipe.output_dir) / "completions.jsonl", dict(zip(columns, row)))
    if recipe.logging.wandb:
        accelerator.get_tracker("wandb").log_table("completions", columns=columns, data=rows, step=step)


def _log_extremes(accelerator, recipe: RLRecipe, sampler, step: int) -> None:
    """The currently hardest and easiest items, for the dashboard's table (samplers that track them)."""
    if not accelerator.is_main_process or not hasattr(sampler, "extremes"):
        return
    extremes = sampler.extremes()
    _append_jsonl(Path(recipe.output_dir) / "curriculum_items.jsonl", {"step": step, **extremes})
    if recipe.logging.wandb:
        columns = ["which", "id", "domain", "pass_rate", "evidence"]
        rows = [[which, r["id"], r["domain"], r["pass_rate"], r["evidence"]] for which in ("hardest", "easiest")
                for r in extremes[which]]
        accelerator.get_tracker("wandb").log_table("curriculum/extremes", columns=columns, data=rows, step=step)


def _write_run_info(accelerator, policy, sampler, recipe: RLRecipe, micro_per_mini: int) -> None:
    full, local = parameter_counts(policy)
    per_rank = gather_object([(local, state_digest(sampler))])
    if accelerator.is_main_process:
        info = {"stage": "rl", "num_processes": accelerator.num_processes,
                "distributed_type": str(accelerator.distributed_type), "parameters": full,
                "parameters_per_rank": [n for n, _ in per_rank], "sampler_digest_per_rank": [d for _, d in per_rank],
                "micro_batches_per_optimizer_step": micro_per_mini}
        (Path(recipe.output_dir) / "run_info.json").write_text(json.dumps(info, indent=2))


def _append_jsonl(path: Path, record: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")

