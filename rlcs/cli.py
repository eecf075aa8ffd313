"""The `rlcs` command: `rlcs STAGE --config RECIPE.yaml [key.path=value ...]`."""

from __future__ import annotations

import argparse
import importlib
import sys

from rewards.registry import RewardSpecError
from rewards.sandbox import SandboxUnavailable
from rlcs.config import InitRecipe, PretrainRecipe, RecipeError, RLRecipe, SFTRecipe, SuiteRecipe, load_recipe
from rlcs.data import DataError
from rlcs.guards import NonFiniteLoss
from rlcs.rl.failures import RewardFailures

# sub-command -> (module under rlcs.stages, recipe schema, help)
STAGES = {
    "data": ("data", SuiteRecipe, "write the synthetic verifiable task suite"),
    "init": ("init", InitRecipe, "train a tokenizer and build a fresh model from a config"),
    "pretrain": ("pretrain", PretrainRecipe, "causal-LM pretraining on packed blocks"),
    "sft": ("sft", SFTRecipe, "long chain-of-thought SFT (loss on responses only)"),
    "rl": ("rl", RLRecipe, "group-relative policy optimisation on verifiable rewards"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlcs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_module, _schema, help_text) in STAGES.items():
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--config", required=True, help="recipe YAML")
        sub.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-4")
    evaluate = commands.add_parser("eval", help="greedy held-out scores per domain and level")
    evaluate.add_argument("--model", required=True, help="HF model directory or hub id")
    evaluate.add_argument("--data", required=True, help="examples file (JSONL/parquet) or hub id")
    evaluate.add_argument("--max-new-tokens", type=int, default=320)
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate at most this many examples")
    evaluate.add_argument("--out", default=None, help="write per-example results as JSONL here")
    evaluate.add_argument("--recipe", default=None,
                          help="RL recipe whose verifiers score the completions (else: exact match only)")
    report = commands.add_parser("report", help="PNG plots and an HTML page from a run's metrics.jsonl")
    report.add_argument("output_dir", help="a stage's output_dir (holding metrics.jsonl)")
    dashboard = commands.add_parser("dashboard", help="create the curriculum dashboard as a wandb workspace")
    dashboard.add_argument("--entity", required=True)
    dashboard.add_argument("--project", required=True)
    dashboard.add_argument("--name", default="rlcs curriculum")
    plan = commands.add_parser("plan", help="expected peak memory per GPU for a recipe, before any compute")
    plan.add_argument("recipe", help="a stage recipe (pretrain.yaml, sft.yaml or rl.yaml)")
    plan.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.micro_batch_size=2")
    plan.add_argument("--accelerate", default=None, help="accelerate config the recipe will be launched with")
    plan.add_argument("--stage", choices=["pretrain", "sft", "rl"], default=None,
                      help="default: from the recipe's file name")
    plan.add_argument("--model", default=None, help="model directory or hub id in place of the recipe's model.path")
    plan.add_argument("--gpu-memory", type=float, default=80.0, help="GiB per GPU (default 80)")
    plan.add_argument("--prompt-tokens", type=int, default=None,
                      help="RL: longest prompt in text tokens, an image's placeholder unexpanded; an image-text "
                           "model's image tokens are added from --image-patches (default: measured on data.train)")
    plan.add_argument("--image-patches", type=int, default=None,
                      help="image-text models: vision-tower patches per sequence (default: the largest among the "
                           "data's rows; none when it has no images; 1024, a 448x448 image, when the data is not "
                           "written yet or the processor cannot be loaded)")
    grade = commands.add_parser("grade",
                                help="offline difficulty: mean clipped reward (or pass share) of k samples per example")
    grade.add_argument("--model", required=True, help="HF model directory or hub id")
    grade.add_argument("--data", required=True, help="examples file (JSONL/parquet) or hub id")
    grade.add_argument("-k", type=int, default=8, help="samples per example")
    grade.add_argument("--recipe", default="recipes/tiny/rl.yaml", help="RL recipe whose rewards and rollout to use")
    grade.add_argument("--out", default=None, help="output JSONL (default: DATA_graded.jsonl)")
    grade.add_argument("--batch-size", type=int, default=16, help="examples per generate call")
    grade.add_argument("--limit", type=int, default=None)
    grade.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "eval":
            from rlcs.evaluate import main as evaluate_main

            return evaluate_main(args)
        if args.command == "report":
            from rlcs.report import main as report_main

            return report_main(args)
        if args.command == "dashboard":
            from rlcs.dashboard import main as dashboard_main

            return dashboard_main(args)
        if args.command == "plan":
            from rlcs.plan import main as plan_main

            return plan_main(args)
        if args.command == "grade":
            from rlcs.grade import main as grade_main

            return grade_main(args)
        module_name, schema, _ = STAGES[args.command]
        recipe = load_recipe(args.config, schema, args.overrides)
        importlib.import_module(f"rlcs.stages.{module_name}").run(recipe)
    except (RecipeError, DataError, RewardSpecError, RewardFailures, NonFiniteLoss) as exc:
        print(f"error: {exc}", file=sys.stderr)
        _leave_process_group()
        return 2
    except SandboxUnavailable as exc:  # a host without bubblewrap: maybe this one alone, so no collective teardown
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _leave_process_group()
    return 0


def _leave_process_group() -> None:
    """A stage that stops early (bad data, a failure budget, a non-finite loss) leaves before its run's
    ``end_training``; exiting with the process group alive can abort the interpreter's teardown
    ('terminate called without an active exception') and turn a clear error into a signal. Only after
    success and after these errors, which every process raises together (same data and recipe, collective
    budget and guard): an error on one process alone must not wait here for peers stuck in a collective
    (NCCL's destroy waits for them); it exits and the launcher stops the others."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
