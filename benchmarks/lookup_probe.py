"""Does the tiny model read an item by its label? The skill every level-1 task leans on.

    python benchmarks/lookup_probe.py [--models outputs/bench-pipeline/pretrain/model ...]
                                      [--documents 150] [--train-steps 0]

Each probe document is a labelled list and then every item again by its label in
a shuffled order (``rlcs.tasks.drills.lookup_document``, the pretraining corpus's
lookup drills, drawn with a seed the corpus does not use). After each label in the
second half the next token is the value the first half gave that label: a model
that reads by label predicts it; one that does not can only guess among the 18
values (chance 1/18 = 5.6%). Accuracy is the greedy next-token prediction
(teacher-forced) at those positions.

``--train-steps N`` also trains the recipe's freshly initialised tiny model
(``recipes/tiny/init.yaml`` shape, 16 lookup documents of one row each per step,
AdamW lr 1e-3, 20 warm-up steps) on lookup documents alone and probes it every 100
steps: how long the model takes to start reading by label when that is all it sees.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, write_section  # noqa: E402

from rlcs.tasks import drills  # noqa: E402

PROBE_SEED = "lookup-probe"  # the corpus draws its drills from "<seed>:drills"


def probe_documents(count: int) -> list[str]:
    rng = random.Random(PROBE_SEED)
    return [drills.lookup_document(rng) for _ in range(count)]


@torch.no_grad()
def lookup_accuracy(model, tokenizer, documents: list[str]) -> tuple[float, int]:
    """Share of second-half values predicted right after their label, and how many were asked."""
    model.eval()
    right = total = 0
    for document in documents:
        head = document.split("\nAgain:\n")[0] + "\nAgain:\n"
        ids = tokenizer(document, add_special_tokens=False)["input_ids"]
        predicted = model(torch.tensor([ids])).logits[0].argmax(-1)
        start = len(tokenizer(head, add_special_tokens=False)["input_ids"])
        for position in range(start, len(ids)):
            if tokenizer.decode([ids[position - 1]]).endswith(":"):  # a label token: its value comes next
                total += 1
                right += int(predicted[position - 1] == ids[position])
    return right / max(total, 1), total


def train_on_lookups(model_dir: str, steps: int, documents: list[str]) -> list[tuple[int, float, float]]:
    """(step, lookup accuracy, seconds) every 100 steps of training a fresh copy of ``model_dir``'s shape."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    rng = random.Random("lookup-train")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 20))
    curve, started = [], time.time()
    for step in range(1, steps + 1):
        model.train()
        rows = [tokenizer(drills.lookup_document(rng), add_special_tokens=False)["input_ids"]
                + [tokenizer.eos_token_id] for _ in range(16)]
        width = max(map(len, rows))
        ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 100 == 0:
            accuracy, _ = lookup_accuracy(model, tokenizer, documents)
            curve.append((step, accuracy, time.time() - started))
            print(f"step {step}: lookup accuracy {accuracy:.1%} ({time.time() - started:.0f} s)", flush=True)
    return curve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["outputs/bench-pipeline/pretrain/model",
                                                        "outputs/bench-pipeline/sft/model"])
    parser.add_argument("--documents", type=int, default=150)
    parser.add_argument("--train-steps", type=int, default=0)
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    documents = probe_documents(args.documents)
    rows = []
    for path in args.models:
        model = AutoModelForCausalLM.from_pretrained(path)
        accuracy, asked = lookup_accuracy(model, AutoTokenizer.from_pretrained(path), documents)
        print(f"{path}: lookup accuracy {accuracy:.1%} over {asked} values")
        rows.append(f"| `{path}` | {accuracy:.1%} | {asked} |")
    command = "python benchmarks/lookup_probe.py" + (f" --models {' '.join(args.models)}" if args.models else "")
    command += f" --documents {args.documents}" + (f" --train-steps {args.train_steps}" if args.train_steps else "")
    text = [
        "## Reading by label: lookup probe of the tiny model",
        "",
        f"Command: `{command}`. Machine: {machine()}.",
        f"{args.documents} lookup documents (a labelled list, then every item again by its label in a shuffled",
        "order); accuracy of the greedy next token after each label in the second half, teacher-forced.",
        "Chance is 1/18 = 5.6% (values are 10 digits and 8 letters).",
        "",
        "| model | lookup accuracy | values asked |",
        "|---|---|---|",
        *rows,
    ]
    if args.train_steps:
        curve = train_on_lookups(args.models[0], args.train_steps, documents)
        text += ["", "A fresh model of the same shape trained on lookup documents alone (16 per step, AdamW",
                 "lr 1e-3), probed every 100 steps:", "", "| step | lookup accuracy | seconds |", "|---|---|---|",
                 *(f"| {step} | {accuracy:.1%} | {seconds:.0f} |" for step, accuracy, seconds in curve)]
    write_section("lookup_probe", "\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
