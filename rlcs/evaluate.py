"""Greedy held-out accuracy per domain and level (`rlcs eval`).

Exact match of the boxed answer after whitespace normalisation: the strict
yardstick for the synthetic suite. RL scores with the domain verifiers instead.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rewards.extract import extract_answer
from rlcs.chat import render_prompt
from rlcs.config import ModelConfig
from rlcs.data import load_examples, write_jsonl
from rlcs.rl.rollout import stop_ids


def example_messages(example: dict) -> list[dict]:
    if "messages" in example:
        return [{"role": m["role"], "content": m["content"]} for m in example["messages"]]
    return [{"role": "user", "content": example["prompt"]}]




@torch.no_grad()
def generate_greedy(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int,
                    show_progress: bool = True) -> list[str]:
    """Left-padded batched greedy decoding; prompts are batched by length, results keep input order."""
    tokenizer.padding_side = "left"
    stops = stop_ids(tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    completions: list[str] = [""] * len(prompts)
    model.eval()
    for start in tqdm(range(0, len(order), batch_size), desc="eval", disable=not show_progress):
        indices = order[start:start + batch_size]
        batch = tokenizer([prompts[i] for i in indices], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(model.device)
        output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops,
                                pad_token_id=tokenizer.pad_token_id)
        for row, index in enumerate(indices):
            tokens = output[row, batch["input_ids"].shape[1]:].tolist()
            cut = next((k for k, t in enumerate(tokens) if t in (tokenizer.eos_token_id, tokenizer.pad_token_id)),
                       len(tokens))
            completions[index] = tokenizer.decode(tokens[:cut], skip_special_tokens=False)
    return completions


def is_exact(completion: str, answer) -> bool:
    extracted = extract_answer(completion).answer
    return extracted is not None and " ".join(extracted.split()) == " ".join(str(answer).split())


def accuracy_table(examples: list[dict], correct: list[bool]) -> dict[str, float]:
    """``eval/<domain>/accuracy``, ``eval/<domain>/level<k>/accuracy`` and ``eval/accuracy``."""
    buckets: dict[str, list[bool]] = defaultdict(list)
    for example, ok in zip(examples, correct):
        buckets[f"eval/{example['domain']}/accuracy"].append(ok)
        if "level" in example:
            buckets[f"eval/{example['domain']}/level{example['level']}/accuracy"].append(ok)
        buckets["eval/accuracy"].append(ok)
    return {key: sum(values) / len(values) for key, values in sorted(buckets.items())}


def evaluate(model, tokenizer, examples: list[dict], max_new_tokens: int = 320, batch_size: int = 64,
             show_progress: bool = True) -> tuple[dict[str, float], list[dict]]:
    prompts = [render_prompt(tokenizer, example_messages(example)) for example in examples]
    completions = generate_greedy(model, tokenizer, prompts, max_new_tokens, batch_size, show_progress)
    correct = [is_exact(c, e["answer"]) for c, e in zip(completions, examples)]
    records = [{"id": e["id"], "domain": e["domain"], "level": e.get("level"), "answer": e["answer"],
                "completion": c, "correct": ok} for e, c, ok in zip(examples, completions, correct)]
    return accuracy_table(examples, correct), records


def format_table(metrics: dict[str, float]) -> str:
    """Markdown: one row per domain, one column per level."""
    domains = sorted({key.split("/")[1] for key in metrics if key.count("/") >= 2})
    levels = sorted({key.split("/")[2] for key in metrics if key.count("/") == 3})
    lines = ["| domain | " + " | ".join(levels) + " | all |", "|---" * (len(levels) + 2) + "|"]
    for domain in domains:
        cells = [f"{metrics.get(f'eval/{domain}/{level}/accuracy', float('nan')):.0%}" for level in levels]
        lines.append(f"| {domain} | " + " | ".join(cells) + f" | {metrics[f'eval/{domain}/accuracy']:.0%} |")
    lines.append("| **all** | " + " | ".join("" for _ in levels) + f" | {metrics['eval/accuracy']:.0%} |")
    return "\n".join(lines)


def main(args) -> int:
    from rlcs.runtime import load_model, load_tokenizer

    config = ModelConfig(path=args.model)
    tokenizer, model = load_tokenizer(config), load_model(config)
    examples = load_examples(args.data)[: args.limit]
    metrics, records = evaluate(model, tokenizer, examples, args.max_new_tokens, args.batch_size)
    print(format_table(metrics))
    if args.out:
        write_jsonl(records, args.out)
        Path(args.out).with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2))
    return 0
