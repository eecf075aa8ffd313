"""`rlcs report OUTPUT_DIR`: PNG plots and one HTML page from a run's metrics.jsonl, no wandb needed.

Each panel is drawn only when its keys were logged, so the same command works
for pretraining, SFT and RL runs.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from rlcs.metrics import read_metrics

# (file stem, title, key patterns, y label)
PANELS = [
    ("curriculum_domains", "Per-domain pass rate (curriculum)", [r"curriculum/domain/[^/]+/pass_rate"], "pass rate"),
    ("curriculum_weights", "Per-domain sampling weight", [r"curriculum/domain/[^/]+/weight"], "weight"),
    ("curriculum_tiers", "Tier shares of the dataset", [r"curriculum/tier/(hard|medium|easy)"], "share"),
    ("curriculum_sampled", "Tier shares of the picks", [r"curriculum/sampled/(hard|medium|easy)"], "share"),
    ("curriculum_expansion", "Expansion and informative groups",
     [r"curriculum/expansion_ratio", r"curriculum/zero_variance_frac", r"curriculum/batch_informative_frac"], ""),
    ("rewards", "Rewards", [r"reward/mean", r"reward/[^/]+/mean"], "reward"),
    ("lengths", "Completion lengths", [r"rollout/length_mean", r"rollout/length_max"], "tokens"),
    ("truncation", "Truncated and forced answers", [r"rollout/truncated_frac", r"rollout/forced_answer_frac"],
     "share"),
    ("loss", "Loss", [r"train/loss", r"eval/loss"], "loss"),
    ("optimizer", "Gradient norm and learning rate", [r"train/grad_norm", r"train/lr"], ""),
    ("policy", "Clipping, KL and entropy",
     [r"train/clip_frac_low", r"train/clip_frac_high", r"train/approx_kl", r"train/entropy"], ""),
    ("eval", "Held-out accuracy (greedy, verifier)", [r"eval/accuracy", r"eval/[^/]+/accuracy"], "accuracy"),
    ("eval_overall", "Held-out: verifier, exact match, sampled pass@1", [r"eval/(accuracy|exact|pass@1)"], "score"),
    ("throughput", "Throughput", [r"train/tokens_per_s", r"time/tokens_per_s"], "tokens/s"),
]


def _series(rows: list[dict], pattern: str) -> dict[str, tuple[list[int], list[float]]]:
    found: dict[str, tuple[list[int], list[float]]] = {}
    regex = re.compile(f"^{pattern}$")
    for row in rows:
        for key, value in row.items():
            if regex.match(key) and isinstance(value, (int, float)):
                steps, values = found.setdefault(key, ([], []))
                steps.append(row["step"])
                values.append(value)
    return found


def build_report(output_dir: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir = Path(output_dir)
    rows = read_metrics(output_dir)
    out = output_dir / "report"
    out.mkdir(exist_ok=True)
    figures = []
    for stem, title, patterns, ylabel in PANELS:
        series = {k: v for pattern in patterns for k, v in _series(rows, pattern).items()}
        if not series:
            continue
        figure, axis = plt.subplots(figsize=(7, 3.6))
        for key, (steps, values) in sorted(series.items()):
            axis.plot(steps, values, label=key, marker="." if len(steps) < 30 else None)
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")
        figure.tight_layout()
        figure.savefig(out / f"{stem}.png", dpi=100)
        plt.close(figure)
        figures.append((stem, title))
    key = "curriculum/pass_rate_histogram"
    histogram = [(r["step"], r[key]) for r in rows if key in r]
    if histogram:
        figure, axis = plt.subplots(figsize=(7, 3.6))
        counts = [[c / max(sum(h), 1) for c in h] for _, h in histogram]
        image = axis.imshow(list(zip(*counts)), aspect="auto", origin="lower", cmap="viridis",
                            extent=(histogram[0][0], histogram[-1][0], 0, 1))
        axis.set_title("Per-example pass-rate distribution over time")
        axis.set_xlabel("step")
        axis.set_ylabel("posterior pass rate")
        figure.colorbar(image, ax=axis, label="share of examples")
        figure.tight_layout()
        figure.savefig(out / "curriculum_histogram.png", dpi=100)
        plt.close(figure)
        figures.insert(0, ("curriculum_histogram", "Per-example pass-rate distribution over time"))
    page = out / "index.html"
    page.write_text(_html(output_dir, rows, figures))
    return page


def _html(output_dir: Path, rows: list[dict], figures: list[tuple[str, str]]) -> str:
    last = rows[-1] if rows else {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>rlcs report: {html.escape(str(output_dir))}"
             "</title><style>body{font-family:sans-serif;max-width:960px;margin:auto}img{max-width:100%}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;vertical-align:top}"
             "table{border-collapse:collapse}pre{white-space:pre-wrap;margin:0}</style></head><body>",
             f"<h1>rlcs report</h1><p>{html.escape(str(output_dir))}: {len(rows)} logged rows, "
             f"last step {last.get('step', '-')}</p>"]
    info = output_dir / "run_info.json"
    if info.exists():
        parts.append(f"<h2>Run</h2><pre>{html.escape(info.read_text())}</pre>")
    for stem, title in figures:
        parts.append(f"<h2>{html.escape(title)}</h2><img src='{stem}.png' alt='{html.escape(title)}'>")
    items = output_dir / "curriculum_items.jsonl"
    if items.exists() and items.read_text().strip():
        latest = json.loads(items.read_text().splitlines()[-1])
        parts.append(f"<h2>Hardest and easiest items (step {latest['step']})</h2><table><tr><th></th><th>id</th>"
                     "<th>domain</th><th>pass rate</th><th>evidence</th></tr>")
        for which in ("hardest", "easiest"):
            for r in latest[which]:
                parts.append(f"<tr><td>{which}</td><td>{html.escape(r['id'])}</td><td>{html.escape(r['domain'])}"
                             f"</td><td>{r['pass_rate']:.3f}</td><td>{r['evidence']}</td></tr>")
        parts.append("</table>")
    completions = output_dir / "completions.jsonl"
    if completions.exists():
        recent = [json.loads(line) for line in completions.read_text().splitlines()[-12:]]
        parts.append("<h2>Recent completions</h2><table><tr><th>step</th><th>id</th><th>answer</th>"
                     "<th>reward</th><th>completion</th></tr>")
        for c in recent:
            parts.append(f"<tr><td>{c['step']}</td><td>{html.escape(c['id'])}</td><td>{html.escape(c['answer'])}</td>"
                         f"<td>{c['reward']:.2f}</td><td><pre>{html.escape(c['completion'])}</pre></td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def main(args) -> int:
    page = build_report(args.output_dir)
    print(f"report: {page}")
    return 0
