"""`rlcs grade`: offline difficulty grading, the offline half of RLCS.

For every example, sample k completions with a model, score them with the
verifiers of an RL recipe, and write the rows back with ``difficulty`` (the
sampler's prior for the item, on the scale its posterior counts in: with the
recipe's ``sampler.rlcs.evidence: reward``, the default, the mean reward clipped
to [0, 1], so a partial-credit item is not graded as all-fail; with ``pass``, the
pass share) and ``pass_at_k`` (any pass).

    rlcs grade --model outputs/tiny/sft/model --data data/tiny/rl.jsonl -k 8 \\
        --recipe recipes/tiny/rl.yaml --out data/tiny/rl_graded.jsonl
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator

from rewards.router import RewardRouter
from rlcs.chat import example_request
from rlcs.config import ModelConfig, validate_recipe
from rlcs.curriculum.maths import credit
from rlcs.data import load_examples, write_jsonl
from rlcs.engine import SamplingParams, TokenEngine, build_engine
from rlcs.evaluate import recipe_router
from rlcs.metrics import progress_bar
from rlcs.runtime import image_text_processor, load_model, load_tokenizer


def grade(engine: TokenEngine, tokenizer, examples: list[dict], router: RewardRouter, k: int, params: SamplingParams,
          pass_threshold: float, batch_size: int, evidence: str = "reward") -> list[dict]:
    """``evidence``: the RLCS sampler's rule (``sampler.rlcs.evidence``), which sets ``difficulty``'s scale."""
    graded = []
    progress = progress_bar(len(examples), "grade", True)
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        completions = engine.generate([example_request(tokenizer, e) for e in chunk], k, params)
        scores = router.score([c.text for c in completions], [chunk[c.prompt_index] for c in completions])
        for j, example in enumerate(chunk):
            item_scores = scores[j * k:(j + 1) * k]
            passes = sum(s >= pass_threshold for s in item_scores)
            graded.append({**example, "difficulty": credit(item_scores, passes, evidence) / k, "pass_at_k": passes > 0})
        progress.update(len(chunk))
    progress.close()
    return graded


def main(args) -> int:
    config = validate_recipe({"path": args.model}, ModelConfig, source="--model")
    processor = image_text_processor(config)
    examples = load_examples(args.data, images=processor is not None)[: args.limit]
    # Only the recipe's rewards and rollout settings matter here; its own data files need not exist.
    recipe, router = recipe_router(args.recipe, args.model, examples, data=args.data)
    torch.manual_seed(args.seed)
    accelerator = Accelerator()
    model = load_model(config).to(accelerator.device)
    params = SamplingParams.from_rollout(recipe.rollout)
    tokenizer = load_tokenizer(config)
    # the recipe's engine (rollout.engine), which generates as the RL stage will
    engine = build_engine(recipe.rollout, model, tokenizer, accelerator, config, args.seed,
                          max_rows=max(args.batch_size * args.k, 1), processor=processor)
    evidence = recipe.sampler.rlcs.evidence
    try:
        graded = grade(engine, tokenizer, examples, router, args.k, params, recipe.rl.pass_threshold,
                       args.batch_size, evidence)
    finally:
        router.close()
    failed = router.failure_summary()
    if failed:  # those completions count as the floor reward in the items' difficulty
        print(f"warning: of {len(examples) * args.k} completions, {failed}")
    out = Path(args.out or Path(args.data).with_name(Path(args.data).stem + "_graded.jsonl"))
    write_jsonl(graded, out)
    mean = sum(g["difficulty"] for g in graded) / max(len(graded), 1)
    scale = "clipped reward" if evidence == "reward" else "pass rate"
    print(f"graded {len(graded)} examples with k={args.k}: mean {scale} {mean:.3f} "
          f"(sampler.rlcs.evidence: {evidence}), "
          f"pass@{args.k} {sum(g['pass_at_k'] for g in graded) / max(len(graded), 1):.3f}; wrote {out}")
    return 0
