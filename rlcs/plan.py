"""`rlcs plan RECIPE [--accelerate CONFIG]`: expected peak memory per GPU before any compute.

Reads the recipe and the launcher config, builds the model on the meta device (exact parameter
counts, no weights loaded) and adds up, per process:

- parameters, gradients and optimizer states: DeepSpeed's own estimators for ZeRO-2 and ZeRO-3 with
  mixed precision (``estimate_zero{2,3}_model_states_mem_needs``, with or without offload), the same
  byte counts for ZeRO-0/1, and plain AdamW (params + grads + two moments in the parameter dtype)
  without DeepSpeed;
- activations kept for the backward pass, per layer and token, for a Llama-style decoder (GLM-4,
  Qwen, Llama): ``e·(10h + 4f + 3·a·d + 2·k·d + a + d/2 + 4) + (4-e)·4h`` bytes with h hidden, f
  intermediate, a heads, k key-value heads, d head size, e activation bytes (the fp32 norms account
  for the last term). With gradient checkpointing only each layer's input (``e·h``) is kept, plus one
  layer's activations while it is recomputed. The coefficients were fitted to the bytes autograd saves
  for Glm4 (tests/test_plan.py checks them against a measurement). At the peak of the backward pass
  one layer's activation gradients exist too (and with checkpointing its recomputed activations);
- the logits, their fp32 log-softmax and its gradient for a micro-batch (RL: completion positions
  only, which is what the policy loss asks the model for);
- DeepSpeed's buffers under ZeRO-2/3: the contiguous gradient bucket (``reduce_bucket_size``
  elements, allocated whole), and under ZeRO-3 the prefetch bucket and the gathered parameters it
  keeps live between forward and backward (``stage3_max_live_parameters``);
- RL generation: the weights gathered whole on every process under ZeRO-3, and the KV cache of one
  generate call (``rollout.max_rows_per_generate`` rows of prompt + completion tokens).

Training and generation do not overlap, so the peak is the larger of the two.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

GIB = 2**30
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass
class Launch:
    processes: int = 1
    machines: int = 1
    deepspeed: bool = False
    zero_stage: int = 0
    offload_optimizer: bool = False
    offload_params: bool = False
    mixed_precision: bool = False  # DeepSpeed bf16/fp16: 16-bit weights with fp32 master copies
    reduce_bucket: int | None = None  # elements; None: "auto" (accelerate sets hidden^2)
    prefetch_bucket: int | None = None  # ZeRO-3 elements; None: "auto" (0.9 hidden^2)
    max_live_parameters: int = 1_000_000_000  # ZeRO-3: gathered parameters DeepSpeed may keep
    overlap_comm: bool = False  # ZeRO-1/2 then keep two reduce buckets

    @property
    def per_machine(self) -> int:
        return max(self.processes // self.machines, 1)

    def describe(self) -> str:
        where = f"{self.processes} process(es) on {self.machines} machine(s)"
        if not self.deepspeed:
            return f"{where}, no DeepSpeed"
        offload = [name for name, on in (("optimizer", self.offload_optimizer), ("parameters", self.offload_params))
                   if on]
        return (f"{where}, DeepSpeed ZeRO-{self.zero_stage}"
                f"{', mixed precision' if self.mixed_precision else ', fp32'}"
                f"{', offload: ' + ' and '.join(offload) if offload else ''}")


def read_launch(path: str | Path | None) -> Launch:
    """An accelerate config (YAML) with an optional DeepSpeed JSON beside the repository root."""
    if path is None:
        return Launch()
    config = yaml.safe_load(Path(path).read_text()) or {}
    launch = Launch(processes=int(config.get("num_processes", 1)), machines=int(config.get("num_machines", 1)))
    if config.get("distributed_type") != "DEEPSPEED":
        return launch
    launch.deepspeed = True
    inline = config.get("deepspeed_config", {}) or {}
    ds: dict = {}
    if inline.get("deepspeed_config_file"):
        ds_path = Path(inline["deepspeed_config_file"])
        if not ds_path.is_file():
            ds_path = Path(path).resolve().parent / ds_path.name
        if not ds_path.is_file():
            raise FileNotFoundError(f"{path}: deepspeed_config_file {inline['deepspeed_config_file']} not found")
        ds = json.loads(ds_path.read_text())
    zero = ds.get("zero_optimization", {})
    stage = zero.get("stage", inline.get("zero_stage", 0))
    launch.zero_stage = 0 if stage == "auto" else int(stage)
    launch.overlap_comm = zero.get("overlap_comm", False) is True
    launch.offload_optimizer = (zero.get("offload_optimizer", {}).get("device", inline.get(
        "offload_optimizer_device", "none")) or "none") != "none"
    launch.offload_params = (zero.get("offload_param", {}).get("device", inline.get(
        "offload_param_device", "none")) or "none") != "none"
    launch.reduce_bucket = _bucket(zero.get("reduce_bucket_size", 500_000_000))
    launch.prefetch_bucket = _bucket(zero.get("stage3_prefetch_bucket_size", 50_000_000))
    launch.max_live_parameters = _bucket(zero.get("stage3_max_live_parameters", 1_000_000_000)) or 1_000_000_000
    launch.mixed_precision = (ds.get("bf16", {}).get("enabled") is True or ds.get("fp16", {}).get("enabled") is True
                              or inline.get("mixed_precision", config.get("mixed_precision", "no")) in ("bf16", "fp16"))
    return launch


def _bucket(value) -> int | None:
    return None if value == "auto" else int(float(value))


@dataclass
class Architecture:
    parameters: int
    largest_layer: int  # parameters of the biggest single module (DeepSpeed gathers one at a time)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int


def read_architecture(model_path: str, trust_remote_code: bool = False) -> Architecture:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    from rlcs.vision import is_image_text_config

    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    # the same auto class as rlcs.runtime.load_model; the decoder's sizes drive activations and the KV cache
    auto = AutoModelForImageTextToText if is_image_text_config(config) else AutoModelForCausalLM
    with torch.device("meta"):
        model = auto.from_config(config, trust_remote_code=trust_remote_code)
    unique = {id(p): p.numel() for p in model.parameters()}
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    text = config.get_text_config()
    heads = text.num_attention_heads
    return Architecture(
        parameters=sum(unique.values()), largest_layer=largest, hidden=text.hidden_size,
        intermediate=text.intermediate_size, layers=text.num_hidden_layers, heads=heads,
        kv_heads=getattr(text, "num_key_value_heads", None) or heads,
        head_dim=getattr(text, "head_dim", None) or text.hidden_size // heads, vocab=text.vocab_size)


def model_states_bytes(parameters: int, largest_layer: int, launch: Launch, param_bytes: int) -> int:
    """Parameters, gradients and optimizer states held by one GPU."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    n = launch.processes
    if not launch.deepspeed:
        return parameters * 4 * param_bytes  # weights, gradients, Adam's two moments, all in the param dtype
    if launch.mixed_precision:
        if launch.zero_stage == 3:
            return estimate_zero3_model_states_mem_needs(
                parameters, largest_layer, launch.per_machine, launch.machines, cpu_offload=launch.offload_optimizer,
                cpu_offload_params=launch.offload_params, zero_init=True)[1]
        if launch.zero_stage == 2:
            return estimate_zero2_model_states_mem_needs(parameters, launch.per_machine, launch.machines,
                                                         cpu_offload=launch.offload_optimizer)[1]
        # ZeRO-0/1: 16-bit weights and gradients whole; fp32 master, moments (and fp32 grads) split at 1
        return 4 * parameters + 16 * parameters // (n if launch.zero_stage == 1 else 1)
    # fp32 under DeepSpeed: the ZeRO optimizer keeps its own fp32 partition besides the weights
    if launch.zero_stage == 3:
        per_param = (0 if launch.offload_params else 4 + 4) + (0 if launch.offload_optimizer else 12)
        return 4 * largest_layer + per_param * parameters // n  # weights + grads; fp32 copy + moments
    if launch.zero_stage == 0:
        return 16 * parameters
    grads = 4 * parameters // (n if launch.zero_stage == 2 else 1)
    return 4 * parameters + grads + (0 if launch.offload_optimizer else 12 * parameters // n)


def layer_activation_bytes(arch: Architecture, e: int) -> float:
    """Bytes autograd keeps per token for one decoder layer (see the module docstring)."""
    h, f, a, k, d = arch.hidden, arch.intermediate, arch.heads, arch.kv_heads, arch.head_dim
    return e * (10 * h + 4 * f + 3 * a * d + 2 * k * d + a + d / 2 + 4) + (4 - e) * 4 * h


def activation_bytes(arch: Architecture, tokens: int, e: int, checkpointing: bool) -> float:
    """Activations of a micro-batch of ``tokens`` tokens at the peak of its backward pass, logits
    excluded: what the forward kept, plus one layer's worth of gradients being computed (and, with
    checkpointing, that layer's recomputed activations)."""
    per_layer = layer_activation_bytes(arch, e)
    outside = max(3 * e, 8) * arch.hidden  # embeddings, final norm
    if checkpointing:
        return tokens * (arch.layers * e * arch.hidden + 2 * per_layer + outside)
    return tokens * ((arch.layers + 1) * per_layer + outside)


def logits_bytes(arch: Architecture, positions: int, e: int) -> float:
    """Logits in the model dtype, their fp32 log-softmax (kept for backward) and its fp32 gradient."""
    return positions * arch.vocab * (e + 4 + 4)


@dataclass
class Term:
    name: str
    bytes: float
    cut: str  # how to make it smaller


def plan_terms(recipe, stage: str, arch: Architecture, launch: Launch,
               prompt_tokens: int) -> tuple[list[Term], list[Term]]:
    """(training-step terms, generation terms); generation only for RL."""
    # DeepSpeed's bf16/fp16 casts an fp32 recipe's model to 16 bits
    e = 2 if launch.deepspeed and launch.mixed_precision else BYTES[recipe.model.dtype]
    param_bytes = e
    micro = recipe.train.micro_batch_size
    states = Term("parameters, gradients and optimizer states",
                  model_states_bytes(arch.parameters, arch.largest_layer, launch, param_bytes),
                  "more processes with ZeRO-3, or offload_optimizer/offload_param to CPU")
    checkpointing = recipe.model.gradient_checkpointing
    if stage == "rl":
        seq = prompt_tokens + recipe.rollout.max_new_tokens
        logit_positions = micro * (recipe.rollout.max_new_tokens + 1)
    else:
        seq = recipe.data.seq_len
        logit_positions = micro * seq
    train = [states,
             Term(f"activations ({micro} x {seq} tokens, gradient checkpointing {'on' if checkpointing else 'off'})",
                  activation_bytes(arch, micro * seq, e, checkpointing),
                  "model.gradient_checkpointing: true" if not checkpointing else "a smaller train.micro_batch_size"),
             Term(f"logits, fp32 log-softmax and its gradient ({logit_positions} positions x {arch.vocab} vocab)",
                  logits_bytes(arch, logit_positions, e), "a smaller train.micro_batch_size")]
    if launch.deepspeed and launch.zero_stage in (2, 3):
        hidden2 = arch.hidden * arch.hidden
        reduce = launch.reduce_bucket if launch.reduce_bucket is not None else hidden2
        buffers = reduce * e * (2 if launch.zero_stage == 2 and launch.overlap_comm else 1)  # allocated whole
        if launch.zero_stage == 3:
            prefetch = launch.prefetch_bucket if launch.prefetch_bucket is not None else int(0.9 * hidden2)
            # gathered parameters DeepSpeed keeps between forward and backward (max_live_parameters)
            buffers += (min(prefetch, arch.parameters) + min(launch.max_live_parameters, arch.parameters)) * e
        train.append(Term("DeepSpeed buffers (reduce bucket; ZeRO-3 prefetch and live gathered parameters)",
                          buffers, "smaller zero_optimization.reduce_bucket_size / stage3_prefetch_bucket_size / "
                          "stage3_max_live_parameters"))
    if stage != "rl":
        return train, []
    if recipe.rl.kl_coef > 0:
        ref = arch.parameters * e // (launch.processes if launch.zero_stage == 3 else 1)
        train.append(Term("frozen reference model (kl_coef > 0)", ref, "rl.kl_coef: 0 (the paper uses none)"))
    rows = recipe.rollout.max_rows_per_generate
    length = prompt_tokens + max(recipe.rollout.max_new_tokens, recipe.train.eval_max_new_tokens)
    kv = rows * length * arch.layers * 2 * arch.kv_heads * arch.head_dim * e
    generation = [Term(states.name, states.bytes, states.cut)] + [t for t in train if t.name.startswith("DeepSpeed")]
    if launch.zero_stage == 3:
        generation.append(Term("weights gathered whole for generation (ZeRO-3)", arch.parameters * e,
                               "a vLLM engine on its own GPUs (not built yet)"))
    generation.append(Term(f"KV cache of one generate call ({rows} rows x {length} tokens)", kv,
                           "a smaller rollout.max_rows_per_generate"))
    prefill = rows * prompt_tokens * (2 * arch.intermediate + 4 * arch.hidden) * e  # one layer at a time
    generation.append(Term(f"prefill of one generate call ({rows} rows x {prompt_tokens} prompt tokens, one layer)",
                           prefill, "a smaller rollout.max_rows_per_generate"))
    return train, generation


def format_plan(title: str, train: list[Term], generation: list[Term], gpus: int, gpu_gib: float) -> str:
    lines = [title, ""]
    peaks = []
    for phase, terms in (("training step", train), ("generation", generation)):
        if not terms:
            continue
        total = sum(t.bytes for t in terms)
        peaks.append((total, phase, terms))
        lines.append(f"{phase}:")
        lines += [f"  {t.bytes / GIB:10.3f} GiB  {t.name}" for t in terms]
        lines.append(f"  {total / GIB:10.3f} GiB  total")
    peak, phase, terms = max(peaks, key=lambda p: p[0])
    lines.append("")
    lines.append(f"peak per GPU: {peak / GIB:.3f} GiB ({phase})")
    if peak <= gpu_gib * GIB:
        lines.append(f"fits on {gpus} x {gpu_gib:g} GiB")
    else:
        biggest, second = sorted(terms, key=lambda t: t.bytes, reverse=True)[:2] + [None] * (len(terms) < 2)
        lines.append(f"does not fit on {gpus} x {gpu_gib:g} GiB: the biggest term is {biggest.name} "
                     f"({biggest.bytes / GIB:.2f} GiB); to cut it: {biggest.cut}")
        if second is not None:
            lines.append(f"next: {second.name} ({second.bytes / GIB:.2f} GiB); to cut it: {second.cut}")
    return "\n".join(lines)


def peak_bytes(train: list[Term], generation: list[Term]) -> float:
    return max(sum(t.bytes for t in train), sum(t.bytes for t in generation))


def longest_prompt(recipe, limit: int = 20_000) -> int:
    """Tokens of the longest rendered prompt among the first ``limit`` RL examples."""
    from rlcs.chat import example_prompt
    from rlcs.data import load_examples
    from rlcs.runtime import load_tokenizer

    tokenizer = load_tokenizer(recipe.model)
    examples = load_examples(recipe.data.train, recipe.data.split)[:limit]
    return max(len(tokenizer(example_prompt(tokenizer, e), add_special_tokens=False)["input_ids"]) for e in examples)


def stage_of(recipe_path: Path, raw: dict, stage: str | None) -> str:
    if stage:
        return stage
    if recipe_path.stem in ("pretrain", "sft", "rl"):
        return recipe_path.stem
    if "rollout" in raw or "rewards" in raw:
        return "rl"
    raise ValueError(f"{recipe_path}: cannot tell the stage from the file name; pass --stage pretrain|sft|rl")


def main(args) -> int:
    from rlcs.config import PretrainRecipe, RLRecipe, SFTRecipe, load_recipe

    recipe_path = Path(args.recipe)
    raw = yaml.safe_load(recipe_path.read_text()) or {}
    stage = stage_of(recipe_path, raw, args.stage)
    schema = {"pretrain": PretrainRecipe, "sft": SFTRecipe, "rl": RLRecipe}[stage]
    overrides = ([f"model.path={args.model}"] if args.model else []) + list(args.overrides)
    data = next((o.split("=", 1)[1] for o in reversed(overrides) if o.startswith("data.train=")),
                (raw.get("data") or {}).get("train"))
    data_missing = isinstance(data, str) and data.endswith((".jsonl", ".json", ".parquet", ".csv")) \
        and not Path(data).expanduser().exists()
    evaluation = (raw.get("data") or {}).get("eval")
    if isinstance(evaluation, str) and not Path(evaluation).expanduser().exists():
        overrides.append("data.eval=null")  # held-out data does not change the memory
    if data_missing:  # planning needs no data, except the longest RL prompt (then --prompt-tokens or 1024)
        placeholder = Path(tempfile.mkdtemp()) / "none.jsonl"
        placeholder.write_text("")
        overrides = [o for o in overrides if not o.startswith(("data.train=", "data.eval="))]
        overrides += [f"data.train={placeholder}", "data.eval=null"]
        if stage == "rl" and args.prompt_tokens is None:
            args.prompt_tokens = 1024
            print(f"{data} does not exist yet: assuming prompts of up to 1024 tokens (--prompt-tokens to set it)")
    recipe = load_recipe(recipe_path, schema, overrides)
    launch = read_launch(args.accelerate)
    try:
        arch = read_architecture(recipe.model.path, recipe.model.trust_remote_code)
    except OSError as exc:  # a hub id with no network, or a directory without config.json
        print(f"error: cannot read the model config of {recipe.model.path!r}: {exc}", file=sys.stderr)
        return 2
    prompt_tokens = args.prompt_tokens
    if stage == "rl" and prompt_tokens is None:
        prompt_tokens = longest_prompt(recipe)
        print(f"longest prompt in {recipe.data.train}: {prompt_tokens} tokens (--prompt-tokens to set it)")
    train, generation = plan_terms(recipe, stage, arch, launch, prompt_tokens or 0)
    title = (f"rlcs plan: {recipe_path} ({stage}), {arch.parameters / 1e6:.2f}M parameters "
             f"(largest module {arch.largest_layer / 1e6:.2f}M), {recipe.model.dtype}; {launch.describe()}")
    print(format_plan(title, train, generation, launch.processes, args.gpu_memory))
    return 0
