"""Wall time of ./launch.sh on a recipe folder per step, held-out accuracy after SFT, and RL's before/after.

    python benchmarks/pipeline.py [--recipe recipes/tiny] [--out outputs/bench-pipeline] [--skip-launch]
                                  [--section NAME]

The default folder writes the `pipeline` section of docs/benchmarks.md; another folder writes
`pipeline-<folder name>` (e.g. `pipeline-tiny-vl` for the tiny GLM-4V of recipes/tiny-vl); --section
names another, for a run with overrides (`--out DIR --section NAME key=value …`, which ./launch.sh gets).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import check_section, machine, write_section  # noqa: E402

from rewards.extract import extract_answer  # noqa: E402
from rlcs.config import ModelConfig  # noqa: E402
from rlcs.data import load_examples  # noqa: E402
from rlcs.evaluate import evaluate, format_table, recipe_router  # noqa: E402
from rlcs.metrics import read_metrics  # noqa: E402
from rlcs.runtime import image_text_processor, load_model, load_tokenizer  # noqa: E402
from rlcs.tasks import UNWORKED_REASONING  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/tiny", help="recipe folder for ./launch.sh")
    parser.add_argument("--out", default=None, help="default: outputs/bench-pipeline[-<folder name>]")
    parser.add_argument("--skip-launch", action="store_true", help="reuse an existing run in --out")
    parser.add_argument("--section", default=None,
                        help="docs/benchmarks.md section, default pipeline[-<folder name>]; another name (starting "
                             "with pipeline) keeps the recipe's own tables, e.g. for a run with overrides")
    parser.add_argument("overrides", nargs="*",
                        help="key=value or STAGE:key=value for ./launch.sh (with --skip-launch: the ones the run had, "
                             "for the section's text)")
    args = parser.parse_args()
    folder = Path(args.recipe).name
    default = folder == "tiny"
    section = args.section or ("pipeline" if default else f"pipeline-{folder}")
    if args.overrides and not args.section:
        parser.error("overrides change the recipe: name a --section for the run, so the recipe's own tables stay")
    check_section(parser, section, "pipeline")
    args.out = args.out or ("outputs/bench-pipeline" if default else f"outputs/bench-pipeline-{folder}")
    out = REPO / args.out
    data_dir = yaml.safe_load((REPO / args.recipe / "data.yaml").read_text())["output_dir"]

    total = None
    if not args.skip_launch:
        started = time.time()
        subprocess.run(["./launch.sh", args.recipe, "--out", args.out, *args.overrides], cwd=REPO, check=True)
        total = time.time() - started
        (out / "launch_total_s.txt").write_text(f"{total:.1f}\n")  # so --skip-launch can report it
    elif (out / "launch_total_s.txt").exists():
        total = float((out / "launch_total_s.txt").read_text())
    timings = [line.split("\t") for line in (out / "launch_times.tsv").read_text().splitlines()]

    config = ModelConfig(path=str(out / "sft" / "model"))
    processor = image_text_processor(config)
    examples = load_examples(str(REPO / data_dir / "eval.jsonl"), images=processor is not None)
    recipe, router = recipe_router(REPO / args.recipe / "rl.yaml", config.path, examples, workers=0)

    def greedy_eval(model_dir: Path) -> tuple[dict[str, float], list[dict]]:
        stage_config = ModelConfig(path=str(model_dir))
        return evaluate(load_model(stage_config), load_tokenizer(stage_config), examples,
                        recipe.train.eval_max_new_tokens, show_progress=False, scorer=router.score,
                        processor=processor)

    started = time.time()
    metrics, sft_results = greedy_eval(out / "sft" / "model")
    eval_seconds = time.time() - started

    rl_section = ""
    if (out / "rl" / "metrics.jsonl").exists():
        rl_metrics, rl_results = greedy_eval(out / "rl" / "model")
        rl_section = (_rl_before_after(out / "rl", folder)
                      + _strategies(metrics, rl_metrics, sft_results, rl_results, len(examples))
                      + _paired_by_domain(sft_results, rl_results)
                      + _answer_concentration(sft_results, rl_results))
    rows = "\n".join(f"| {stage} | {seconds} |" for stage, seconds in timings)
    total_line = f"| **total (launch.sh wall time)** | {total:.0f} |" if total is not None else ""
    command = "python benchmarks/pipeline.py" + ("" if default else f" --recipe {args.recipe}")
    if args.section:
        command += f"{' --skip-launch' if args.skip_launch else ''} --out {args.out} --section {section}"
    launched = " ".join(["./launch.sh", args.recipe, "--out", args.out, *args.overrides])
    with_overrides = f" with `{' '.join(args.overrides)}`" if args.overrides else ""
    if args.overrides:
        command += " " + " ".join(args.overrides)
    write_section(section, f"""
## Pipeline of `{args.recipe}`{with_overrides}: `./launch.sh` wall time per step

Command: `{command}` (runs `{launched}` with
`recipes/accelerate/cpu.yaml`, then greedy evaluation). Machine: {machine()}.

| step | seconds |
|---|---|
{rows}
{total_line}

## Held-out accuracy after SFT (`{args.recipe}`, greedy)

All {len(examples)} held-out examples of `{data_dir}/eval.jsonl` (ids excluded from every training split),
greedy, evaluation took {eval_seconds:.0f} s. Scored by the domain verifiers of `{args.recipe}/rl.yaml` (the
RL reward; transcription's and ocr's are partial credit by edit distance, grounding's by box IoU):

{format_table(metrics)}

Exact boxed answer after whitespace normalisation:

{format_table(metrics, "exact")}
{rl_section}
""")


def _strategies(sft_metrics: dict, rl_metrics: dict, sft_results: list[dict], rl_results: list[dict],
                count: int) -> str:
    """All held-out items, greedy, SFT model against RL model: overall, and how often each level's
    answer was stated without working (the unworked traces of the SFT data) and how often each way was right."""

    def by_level(results: list[dict]) -> dict[int, tuple[float, float, float]]:
        table = {}
        for level in sorted({r["level"] for r in results}):
            rows = [r for r in results if r["level"] == level]
            unworked = [r["score"] for r in rows if UNWORKED_REASONING in r["completion"]]
            worked = [r["score"] for r in rows if UNWORKED_REASONING not in r["completion"]]
            table[level] = (len(unworked) / len(rows),
                            sum(unworked) / len(unworked) if unworked else float("nan"),
                            sum(worked) / len(worked) if worked else float("nan"))
        return table

    def share(value: float) -> str:
        return "–" if value != value else f"{value:.0%}"  # NaN: no completion went that way

    sft, rl = by_level(sft_results), by_level(rl_results)
    lines = [" | ".join([f"| {level}"] + [f"{share(sft[level][i])} → {share(rl[level][i])}" for i in range(3)]) + " |"
             for level in sft]
    return f"""

All {count} held-out items, greedy, SFT model → RL model: verifier-scored {sft_metrics['eval/accuracy']:.1%} →
{rl_metrics['eval/accuracy']:.1%}, exact {sft_metrics['eval/exact']:.1%} → {rl_metrics['eval/exact']:.1%}.
How the answers were reached, by level ("unworked": the completion states the answer without working,
the habit of the SFT data's unworked traces; accuracy is verifier-scored):

| level | unworked | accuracy when unworked | accuracy when worked |
|---|---|---|---|
""" + "\n".join(lines)


def _paired_by_domain(sft_results: list[dict], rl_results: list[dict]) -> str:
    """Per domain, all held-out items, greedy: SFT → RL and the change with its paired standard error (the
    same items score both models, so the error is that of the per-item differences), to tell a change from
    the noise of a few dozen items."""
    rl_by_id = {r["id"]: r for r in rl_results}
    lines = []
    for domain in sorted({r["domain"] for r in sft_results}):
        pairs = [(r["score"], rl_by_id[r["id"]]["score"]) for r in sft_results if r["domain"] == domain]
        n = len(pairs)
        changes = [after - before for before, after in pairs]
        mean = statistics.mean(changes)
        error = statistics.stdev(changes) / n ** 0.5 if n > 1 else float("nan")
        beyond = "yes" if abs(mean) > 2 * error else "no"
        lines.append(f"| {domain} | {n} | {sum(b for b, _ in pairs) / n:.1%} → {sum(a for _, a in pairs) / n:.1%} "
                     f"| {100 * mean:+.1f} ± {100 * error:.1f} | {beyond} |")
    return """

Per domain, the same greedy evaluation of all held-out items, SFT model → RL model, with the change in points
± its paired standard error (over the per-item differences); "beyond 2 SE": the change is larger than twice
its standard error:

| domain | items | verifier score | change | beyond 2 SE |
|---|---|---|---|---|
""" + "\n".join(lines)


def _answer_concentration(sft_results: list[dict], rl_results: list[dict]) -> str:
    """Per domain, how often the greedy answer is the most common one of its level, mean over levels, beside
    the same for the right answers: a model that guesses rather than works a problem out gives one answer to
    most items of a level, and RL can move which one (answer-free completions count as one answer)."""

    def modal_share(answers: list[str]) -> float:
        return Counter(answers).most_common(1)[0][1] / len(answers)

    def per_level(results: list[dict], answer_of) -> float:
        levels = sorted({r["level"] for r in results})
        return statistics.mean(modal_share([answer_of(r) for r in results if r["level"] == level])
                               for level in levels)

    def boxed(record: dict) -> str:
        return extract_answer(record["completion"]).answer or "(none)"

    lines = []
    for domain in sorted({r["domain"] for r in sft_results}):
        sft = [r for r in sft_results if r["domain"] == domain]
        rl = [r for r in rl_results if r["domain"] == domain]
        lines.append(f"| {domain} | {per_level(sft, lambda r: str(r['answer'])):.0%} | {per_level(sft, boxed):.0%} "
                     f"| {per_level(rl, boxed):.0%} |")
    return """

How concentrated the greedy answers are: per domain, the share of a level's items given that level's most
common answer, mean over levels, beside the same for the right answers (a model that always gave the most
common right answer would score that share; completions with no boxed answer count as one answer). A model far
above the right answers' share is giving one guess to most items; a score change that comes with a change of that
share is a changed guess:

| domain | right answers | SFT | RL |
|---|---|---|---|
""" + "\n".join(lines)


def _rl_before_after(rl_dir: Path, folder: str) -> str:
    """Held-out scores logged by the RL stage before its first step and after its last."""
    rows = [r for r in read_metrics(rl_dir) if "eval/accuracy" in r]
    before, after = rows[0], rows[-1]
    domains = sorted({k.split("/")[1] for k in before if k.count("/") == 2 and k.startswith("eval/")})
    names = [n for n in ("accuracy", "exact", "pass@1") if f"eval/{n}" in before]

    def cells(prefix: str) -> str:
        return " | ".join(f"{before[f'{prefix}{n}']:.0%} → {after[f'{prefix}{n}']:.0%}" for n in names)

    lines = [f"| {d} | {cells(f'eval/{d}/')} |" for d in domains]
    lines.append(f"| **all** | {cells('eval/')} |")
    levels = sorted({k.split("/")[2] for k in before if k.count("/") == 3 and k.startswith("eval/")})
    level_lines = [f"| {d} | {level.removeprefix('level')} | {cells(f'eval/{d}/{level}/')} |"
                   for d in domains for level in levels if f"eval/{d}/{level}/accuracy" in before]
    per_cell = max(1, int(before.get("eval/examples", 0)) // max(1, len(level_lines)))
    rewards = [r["reward/mean"] for r in read_metrics(rl_dir) if "reward/mean" in r]
    k = max(1, len(rewards) // 5)
    titles = {"accuracy": "greedy, verifier", "exact": "greedy, exact", "pass@1": "pass@1 sampled, verifier"}
    return f"""
## Held-out scores before and after RL (`{folder}` recipe)

The RL stage's own evaluation (`eval_max_examples` held-out items, a fixed draw) at step 0
and after step {after['step']}: greedy scored by the verifiers, greedy exact match, and pass@1 of
`eval_samples` completions at the rollout temperature. Mean training reward: first {k} steps
{sum(rewards[:k]) / k:.3f}, last {k} steps {sum(rewards[-k:]) / k:.3f}.

| domain | {" | ".join(titles[n] for n in names)} |
|---|{"---|" * len(names)}
""" + "\n".join(lines) + f"""

The same by level (about {per_cell} items per cell, so a cell moves in steps of a few points):

| domain | level | {" | ".join(titles[n] for n in names)} |
|---|---|{"---|" * len(names)}
""" + "\n".join(level_lines)


if __name__ == "__main__":
    main()
