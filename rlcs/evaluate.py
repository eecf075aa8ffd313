"""Held-out evaluation per domain and level (`rlcs eval`, and the RL stage's own eval).

Three numbers per item, each averaged per domain, per level and overall:
- ``accuracy``: the greedy completion scored by the domain's verifier, the same
  function that gives the RL reward (partial-credit verifiers give partial
  scores), so training reward and held-out score mean the same thing;
- ``exact``: the greedy completion's boxed answer equals the ground truth after
  whitespace normalisation (the strict yardstick, verifier-independent);
- ``pass@1``: the mean verifier score of ``samples`` completions drawn at the
  rollout temperature, i.e. what the policy does when it samples.
Without verifiers (``rlcs eval`` with no ``--recipe``) only ``exact`` exists and
``accuracy`` is the exact match.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from rewards.extract import extract_answer
from rlcs.chat import example_request
from rlcs.config import ModelConfig, validate_recipe
from rlcs.data import load_examples, write_jsonl

Scorer = Callable[[Sequence[str], Sequence[dict]], list[float]]


def is_exact(completion: str, answer) -> bool:
    extracted = extract_answer(completion).answer
    return extracted is not None and " ".join(extracted.split()) == " ".join(str(answer).split())


def score_table(examples: Sequence[dict], values: Sequence[float], name: str) -> dict[str, float]:
    """``eval/<domain>/<name>``, ``eval/<domain>/level<k>/<name>`` and ``eval/<name>``: means of ``values``."""
    buckets: dict[str, list[float]] = defaultdict(list)
    for example, value in zip(examples, values):
        buckets[f"eval/{example['domain']}/{name}"].append(float(value))
        if example.get("level") is not None:
            buckets[f"eval/{example['domain']}/level{example['level']}/{name}"].append(float(value))
        buckets[f"eval/{name}"].append(float(value))
    return {key: sum(v) / len(v) for key, v in sorted(buckets.items())}


def metrics_from_records(records: Sequence[dict]) -> dict[str, float]:
    """The tables of ``accuracy``, ``exact`` and (where sampled) ``pass@1`` from ``score_eval``'s records,
    e.g. after records from several processes were gathered."""
    metrics = {**score_table(records, [r["score"] for r in records], "accuracy"),
               **score_table(records, [float(r["exact"]) for r in records], "exact")}
    if records and "pass@1" in records[0]:
        metrics.update(score_table(records, [r["pass@1"] for r in records], "pass@1"))
    return metrics


def recipe_router(recipe_path: str | Path, model: str, examples: Sequence[dict], data: str | None = None,
                  workers: int | None = None):
    """An RL recipe read for its rewards and rollout settings only (its own data files need not exist),
    and the router of its verifiers, checked against ``examples``' domains, run as the RL stage runs them
    (``reward_workers``: supervised processes, so a hanging verifier cannot hang scoring; ``workers=0``
    scores in this process, for scripts that build many routers): (recipe, router)."""
    from rewards.router import RewardRouter
    from rlcs.config import RLRecipe, load_recipe

    overrides = [f"model.path={model}"] + ([f"data.train={data}", "data.eval=null"] if data else [])
    recipe = load_recipe(recipe_path, RLRecipe, overrides)
    pool = recipe.reward_workers
    return recipe, RewardRouter.from_config({d: e.model_dump() for d, e in recipe.rewards.items()}, examples,
                                            pool.workers if workers is None else workers, pool.timeout_s,
                                            pool.memory_mb)


def score_eval(examples: Sequence[dict], greedy: Sequence[str], scorer: Scorer | None,
               sampled: Sequence[Sequence[str]] | None = None) -> tuple[dict[str, float], list[dict]]:
    """Metrics and per-example records from greedy completions (one per example) and optional
    sampled ones (the same number per example)."""
    exact = [float(is_exact(c, e["answer"])) for c, e in zip(greedy, examples)]
    verified = scorer(list(greedy), list(examples)) if scorer is not None else exact
    records = [{"id": e["id"], "domain": e["domain"], "level": e.get("level"), "answer": e["answer"],
                "completion": c, "score": v, "exact": bool(x)}
               for e, c, v, x in zip(examples, greedy, verified, exact)]
    if sampled is not None and scorer is not None:
        flat = [c for group in sampled for c in group]
        owners = [e for e, group in zip(examples, sampled) for _ in group]
        scores = scorer(flat, owners)
        position = 0
        for record, group in zip(records, sampled):
            record["pass@1"] = sum(scores[position:position + len(group)]) / max(len(group), 1)
            position += len(group)
    return metrics_from_records(records), records


def evaluate(model, tokenizer, examples: list[dict], max_new_tokens: int = 320, batch_size: int = 64,
             show_progress: bool = True, scorer: Scorer | None = None,
             processor=None) -> tuple[dict[str, float], list[dict]]:
    """Greedy evaluation of one model in this process (no sampling); ``processor``: an image-text model's."""
    from rlcs.engine import HFEngine, greedy

    prompts = [example_request(tokenizer, example) for example in examples]
    engine = HFEngine(model, tokenizer, max_rows=batch_size, processor=processor)
    completions = engine.generate(prompts, 1, greedy(max_new_tokens), progress="eval" if show_progress else None)
    return score_eval(examples, [c.text for c in completions], scorer)


def format_table(metrics: dict[str, float], name: str = "accuracy") -> str:
    """Markdown for one metric: one row per domain, one column per level."""
    suffix = f"/{name}"
    domains = sorted({key.split("/")[1] for key in metrics if key.count("/") >= 2 and key.endswith(suffix)})
    levels = sorted({key.split("/")[2] for key in metrics if key.count("/") == 3 and key.endswith(suffix)})
    lines = ["| domain | " + " | ".join(levels) + " | all |", "|---" * (len(levels) + 2) + "|"]
    for domain in domains:
        cells = [f"{metrics.get(f'eval/{domain}/{level}/{name}', float('nan')):.0%}" for level in levels]
        lines.append(f"| {domain} | " + " | ".join(cells) + f" | {metrics[f'eval/{domain}/{name}']:.0%} |")
    lines.append("| **all** | " + " | ".join("" for _ in levels) + f" | {metrics[f'eval/{name}']:.0%} |")
    return "\n".join(lines)


def main(args) -> int:
    from rlcs.runtime import image_text_processor, load_model, load_tokenizer

    config = validate_recipe({"path": args.model}, ModelConfig, source="--model")
    tokenizer, model = load_tokenizer(config), load_model(config)
    processor = image_text_processor(config)
    examples = load_examples(args.data, images=processor is not None)[: args.limit]
    router = recipe_router(args.recipe, args.model, examples, data=args.data)[1] if args.recipe else None
    try:
        metrics, records = evaluate(model, tokenizer, examples, args.max_new_tokens, args.batch_size,
                                    scorer=router.score if router else None, processor=processor)
    finally:
        if router is not None:
            router.close()
    failed = router.failure_summary() if router is not None else None
    if failed:
        print(f"warning: {failed}")
    for name in ("accuracy", "exact") if router else ("exact",):
        title = {"accuracy": "verifier score (greedy)", "exact": "exact boxed answer (greedy)"}[name]
        print(f"{title}\n{format_table(metrics, name)}\n")
    if args.out:
        write_jsonl(records, args.out)
        Path(args.out).with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2))
    return 0
