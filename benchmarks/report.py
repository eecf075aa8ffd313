"""Each benchmark owns one marked section of docs/benchmarks.md and rewrites only that."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from rlcs.metrics import read_metrics

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
TINY_RL = REPO / "recipes" / "tiny" / "rl.yaml"
HEADER = (
    "# Benchmarks\n\nEvery table here is written by a script under `benchmarks/`; "
    "the command that reproduces it is given above the table.\n"
)


def machine() -> str:
    """The machine a figure was measured on. The CPU matters: the same 2-core kind has run the tiny pipeline
    in 561 s on one host and 870 s on another, and a virtualised model name ("AMD EPYC") alone does not tell
    two hosts apart, so the family and model numbers go with it."""
    return f"{platform.machine()} {_cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def _cpu_model() -> str:
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="ignore").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def write_section(name: str, markdown: str) -> None:
    text = DOC.read_text() if DOC.exists() else HEADER
    block = f"<!-- BEGIN {name} -->\n{markdown.strip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"wrote section '{name}' of {DOC}")


def check_section(parser, name: str, base: str, overrides: list[str] = ()) -> None:
    """A benchmark's section is ``base`` or a variant named after it, so a variant run cannot overwrite another
    benchmark's section (nor, via the name, write a file outside docs/); a run with ``overrides`` (another
    recipe or model) must be a variant, so the benchmark's own table stays."""
    if not re.fullmatch(rf"{re.escape(base)}[a-z0-9_-]*", name):
        parser.error(f"--section must be {base} or start with it, so it cannot overwrite another benchmark's section")
    if overrides and name == base:
        parser.error(f"overrides change the run: name a --section for it, so {base}'s own table stays")


def zero_variance_share(run_dir: Path, group_size: int) -> tuple[int, float]:
    """(groups rolled out, share of them whose completions all scored the same) over a whole RL run, trained
    on or not (rlcs rolls out more than it keeps, dapo regenerates)."""
    last = [r for r in read_metrics(run_dir) if "curriculum/rollouts_total" in r][-1]
    groups = last["curriculum/rollouts_total"] // group_size
    return groups, 1 - last["curriculum/informative_total"] / groups


def mean_sd(values: list[float], fmt: Callable[[float], str]) -> str:
    """"mean ± standard deviation" (the mean alone for one value), each through ``fmt``; a sign ``fmt``
    puts on the deviation is dropped."""
    mean = fmt(statistics.mean(values))
    return mean + (f" ± {fmt(statistics.stdev(values)).lstrip('+')}" if len(values) > 1 else "")


def launch_rl(overrides: list[str], recipe: Path = TINY_RL) -> None:
    """``rlcs rl`` on ``recipe`` with ``overrides``, from the repository root, wandb off."""
    subprocess.run([sys.executable, "-m", "rlcs.cli", "rl", "--config", str(recipe), *overrides],
                   cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"}, check=True)
