"""The curriculum dashboard, as data, and `rlcs dashboard` to create it as a wandb workspace.

Creating a workspace needs the optional package ``wandb-workspaces``
(``pip install -e ".[dashboard]"``), a wandb login and network access; the
definition itself is plain data so tests can check that every panel's keys are
keys the RL loop logs. What wandb's workspace API does not express (tables,
the pass-rate histogram) appears through wandb's automatic panels, which the
workspace keeps on.
"""

from __future__ import annotations

# section -> [(panel title, metric regex, plot type)]
DASHBOARD: dict[str, list[tuple[str, str, str]]] = {
    "Curriculum": [
        ("Per-domain pass rate", r"curriculum/domain/.*/pass_rate", "line"),
        ("Per-domain sampling weight", r"curriculum/domain/.*/weight", "line"),
        ("Per-domain informative yield", r"curriculum/domain/.*/yield", "line"),
        ("Per-domain drift (logit offset of seen items)", r"curriculum/domain/.*/drift", "line"),
        ("Per-stratum prior mean (sampler.rlcs.prior_by)", r"curriculum/stratum/.*/prior_mean", "line"),
        ("Tier shares of the dataset", r"curriculum/tier/(easy|medium|hard)", "stacked-area"),
        ("Tier shares of the picks", r"curriculum/sampled/(easy|medium|hard)", "stacked-area"),
        ("Retired items (no pass nor informative group in retire_after looks)", r"curriculum/retired", "line"),
        ("Expansion ratio", r"curriculum/expansion_ratio", "line"),
        ("Uninformative (zero-variance) groups", r"curriculum/zero_variance_frac|rollout/zero_variance_frac", "line"),
        ("Informative share of the trained batch", r"curriculum/batch_informative_frac", "line"),
        ("Rollouts and informative groups", r"curriculum/(rollouts|informative)_total", "line"),
    ],
    "Rewards and rollouts": [
        ("Mean reward", r"reward/mean", "line"),
        ("Reward per domain", r"reward/[^/]+/mean", "line"),
        ("Verifier errors and timeouts", r"reward/.*/(errors|timeouts)", "line"),
        ("Completion length", r"rollout/length_(mean|max)", "line"),
        ("Truncated and forced answers", r"rollout/(truncated|forced_answer)_frac", "line"),
        ("Held-out accuracy", r"eval/.*accuracy", "line"),
        ("Held-out exact match and sampled pass@1", r"eval/(.*/)?(exact|pass@1)", "line"),
    ],
    "Optimisation": [
        ("Loss", r"train/loss", "line"),
        ("Clip fractions", r"train/clip_frac_(low|high)", "line"),
        ("Approximate KL and entropy", r"train/(approx_kl|entropy)", "line"),
        ("Gradient norm", r"train/grad_norm", "line"),
        ("Time per phase", r"time/(rollout|reward|train)_s", "stacked-area"),
    ],
}


def build_workspace(entity: str, project: str, name: str = "rlcs curriculum"):
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    except ImportError as exc:
        raise RuntimeError('creating the wandb workspace needs `pip install -e ".[dashboard]"`') from exc
    sections = [
        ws.Section(name=section, is_open=True, panels=[
            wr.LinePlot(title=title, metric_regex=regex, plot_type=plot_type) for title, regex, plot_type in panels
        ])
        for section, panels in DASHBOARD.items()
    ]
    return ws.Workspace(entity=entity, project=project, name=name, sections=sections, auto_generate_panels=True)


def main(args) -> int:
    workspace = build_workspace(args.entity, args.project, args.name)
    workspace.save()
    print(f"saved the wandb workspace '{args.name}' for {args.entity}/{args.project}")
    return 0
