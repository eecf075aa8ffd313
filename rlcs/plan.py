"""`rlcs plan RECIPE [--accelerate CONFIG]`: expected peak memory per GPU before any compute.

Reads the recipe and the launcher config, builds the model on the meta device (exact parameter
counts, no weights loaded) and adds up, per process:

- parameters, gradients and optimizer states: DeepSpeed's own estimators for ZeRO-2 and ZeRO-3 with
  mixed precision (``estimate_zero{2,3}_model_states_mem_needs``, with or without offload), the same
  byte counts for ZeRO-0/1, and plain AdamW (params + grads + two moments in the parameter dtype)
  without DeepSpeed. Only trained parameters have gradients and optimizer states: with
  ``model.freeze_vision`` the vision tower, and with ``model.lora`` every base weight, is held in the
  weights' dtype alone (split across processes under ZeRO-3). Which parameters train is decided by
  the training code itself (``freeze_vision_tower``, ``apply_lora``) run on the meta-device model;
  peft keeps adapters in fp32 under a 16-bit base model, so without DeepSpeed they cost 16 bytes each;
- activations kept for the backward pass, per layer and token, for a Llama-style decoder (GLM-4,
  Qwen, Llama): ``e·(10h + 4f + 3·a·d + 2·k·d + a + d/2 + 4) + (4-e)·4h`` bytes with h hidden, f
  intermediate, a heads, k key-value heads, d head size, e activation bytes (the fp32 norms account
  for the last term). With gradient checkpointing only each layer's input (``e·h``) is kept, plus one
  layer's activations while it is recomputed. The coefficients were fitted to the bytes autograd saves
  for Glm4 (tests/test_plan.py checks them against a measurement). At the peak of the backward pass
  one layer's activation gradients exist too (and with checkpointing its recomputed activations);
- image-text models: the vision tower's activations for ``--image-patches`` patches per sequence
  (measured on the data's images with the model's processor when both are at hand), with the same
  per-layer formula in the tower's sizes, when the tower trains (``freeze_vision`` off); with the tower
  frozen only the projector's input is kept. The decoder's image tokens (patches / merge²) are part
  of ``data.seq_len`` for SFT and are added to the longest RL prompt;
- the logits, their fp32 log-softmax and its gradient for a micro-batch (RL: completion positions
  only, which is what the policy loss asks the model for);
- DeepSpeed's buffers under ZeRO-2/3: the contiguous gradient bucket (``reduce_bucket_size``
  elements, allocated whole), and under ZeRO-3 the prefetch bucket and the gathered parameters it
  keeps live between forward and backward (``stage3_max_live_parameters``);
- RL generation: the weights gathered whole on every process under ZeRO-3, and the KV cache of the
  largest generate call: a rollout (the process's share of the batch, over-sampled up to RLCS's
  ``max_expansion``, times G) or an evaluation with held-out data, each at most
  ``rollout.max_rows_per_generate`` rows of prompt + completion tokens.

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


# The sizes of the models the shipped recipes name, so that `rlcs plan` works offline (a hub id whose
# config cannot be fetched). model_type -> config kwargs; everything else is the transformers default.
PUBLISHED_SIZES: dict[str, tuple[str, dict]] = {
    "zai-org/GLM-4-9B-0414": ("glm4", {
        "vocab_size": 151552, "hidden_size": 4096, "intermediate_size": 13696, "num_hidden_layers": 40,
        "num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128, "tie_word_embeddings": False}),
    # transformers' Glm4vConfig defaults are GLM-4.1V-9B's sizes (its docstring says so)
    "zai-org/GLM-4.1V-9B-Thinking": ("glm4v", {}),
    "zai-org/GLM-4.1V-9B-Base": ("glm4v", {}),
    "Qwen/Qwen2.5-VL-7B-Instruct": ("qwen2_5_vl", {
        "text_config": {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
                        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
                        "tie_word_embeddings": False},
        "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                          "out_hidden_size": 3584}}),
}
PUBLISHED_SIZES["THUDM/GLM-4-9B-0414"] = PUBLISHED_SIZES["zai-org/GLM-4-9B-0414"]
PUBLISHED_SIZES["THUDM/GLM-4.1V-9B-Thinking"] = PUBLISHED_SIZES["zai-org/GLM-4.1V-9B-Thinking"]


def model_config(model_path: str, trust_remote_code: bool = False):
    """The model's config; for a hub id that cannot be fetched (offline) and whose sizes are in
    ``PUBLISHED_SIZES``, a config built from them (and a note saying so)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except OSError:
        if model_path not in PUBLISHED_SIZES:
            raise
        model_type, sizes = PUBLISHED_SIZES[model_path]
        print(f"cannot fetch the config of {model_path}: using its published sizes (rlcs/plan.py PUBLISHED_SIZES)")
        return AutoConfig.for_model(model_type, **sizes)


@dataclass
class Architecture:
    parameters: int  # every parameter, LoRA adapters included
    largest_layer: int  # parameters of the biggest single module (DeepSpeed gathers one at a time)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    trained: int | None = None  # parameters with gradients and optimizer states; None: all of them
    vision: Architecture | None = None  # an image-text model's vision tower, its sizes in the same fields
    vision_trained: bool = False  # the tower's activations are kept for backward
    patch_inputs: int = 0  # vision: pixel values per patch (channels x frames x patch^2)
    merge: int = 1  # vision: patches merged into one decoder token, per side

    @property
    def trained_parameters(self) -> int:
        return self.parameters if self.trained is None else self.trained


def read_architecture(model_path: str, trust_remote_code: bool = False, freeze_vision: bool = False,
                      lora=None) -> Architecture:
    """The model's sizes from its config, built on the meta device; ``freeze_vision`` and ``lora`` (a
    ``LoraConfig``) are applied by the training code's own functions to count what trains."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    from rlcs.vision import freeze_vision_tower, is_image_text_config, parameter_role

    config = model_config(model_path, trust_remote_code)
    # the same auto class as rlcs.runtime.load_model; the decoder's sizes drive activations and the KV cache
    auto = AutoModelForImageTextToText if is_image_text_config(config) else AutoModelForCausalLM
    with torch.device("meta"):
        model = auto.from_config(config, trust_remote_code=trust_remote_code)
        largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
        if freeze_vision:
            freeze_vision_tower(model)
        if lora is not None:
            from rlcs.lora import apply_lora

            model = apply_lora(model, lora, skip_vision=freeze_vision)
    unique = {id(p): p for p in model.parameters()}.values()
    trained = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    text = config.get_text_config()
    arch = _sizes(text)
    arch.parameters, arch.largest_layer = sum(p.numel() for p in unique), largest
    arch.trained = sum(p.numel() for _, p in trained)
    vision_config = getattr(config, "vision_config", None)
    if vision_config is not None:
        arch.vision = _sizes(vision_config)
        # the tower's MLP width is not always its config's intermediate_size (GLM-4V's blocks use
        # out_hidden_size; intermediate_size is the merger's): read it off the first block
        widths = [m.out_features for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)
                  and parameter_role(name) == "vision" and ".blocks.0.mlp." in f".{name}."
                  and m.in_features == arch.vision.hidden]
        arch.vision.intermediate = max(widths, default=arch.vision.intermediate)
        arch.vision_trained = any(parameter_role(name) == "vision" for name, _ in trained)
        patch = getattr(vision_config, "patch_size", 14)
        arch.patch_inputs = (getattr(vision_config, "in_channels", 3) * patch * patch
                             * getattr(vision_config, "temporal_patch_size", 1))
        arch.merge = getattr(vision_config, "spatial_merge_size", 1)
    return arch


def _sizes(config) -> Architecture:
    """A decoder's (or a vision tower's) layer sizes, whatever the config calls them."""
    hidden = config.hidden_size
    heads = getattr(config, "num_attention_heads", None) or config.num_heads
    layers = getattr(config, "num_hidden_layers", None) or config.depth
    return Architecture(
        parameters=0, largest_layer=0, hidden=hidden, intermediate=config.intermediate_size, layers=layers,
        heads=heads, kv_heads=getattr(config, "num_key_value_heads", None) or heads,
        head_dim=getattr(config, "head_dim", None) or hidden // heads, vocab=getattr(config, "vocab_size", 0) or 0)


def model_states_bytes(parameters: int, largest_layer: int, launch: Launch, param_bytes: int,
                       trained: int | None = None, trained_bytes: int | None = None) -> int:
    """Parameters, gradients and optimizer states held by one GPU. ``trained``: how many of the
    parameters train (default all); the others are held as weights alone. ``trained_bytes``: the bytes
    of a trained weight when not ``param_bytes`` (without DeepSpeed)."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    n = launch.processes
    trained = parameters if trained is None else trained
    frozen = parameters - trained
    if not launch.deepspeed:  # weights, gradients, Adam's two moments, all in the weights' dtype
        return trained * 4 * (trained_bytes or param_bytes) + frozen * param_bytes
    if launch.mixed_precision:
        if launch.zero_stage == 3:  # frozen weights are partitioned in 16 bits like the others
            return estimate_zero3_model_states_mem_needs(
                trained, largest_layer, launch.per_machine, launch.machines, cpu_offload=launch.offload_optimizer,
                cpu_offload_params=launch.offload_params, zero_init=True)[1] \
                + (0 if launch.offload_params else 2 * frozen // n)
        if launch.zero_stage == 2:
            return estimate_zero2_model_states_mem_needs(trained, launch.per_machine, launch.machines,
                                                         cpu_offload=launch.offload_optimizer)[1] + 2 * frozen
        # ZeRO-0/1: 16-bit weights and gradients whole; fp32 master, moments (and fp32 grads) split at 1
        return 2 * parameters + 2 * trained + 16 * trained // (n if launch.zero_stage == 1 else 1)
    # fp32 under DeepSpeed: the ZeRO optimizer keeps its own fp32 partition besides the weights
    if launch.zero_stage == 3:
        weights = 0 if launch.offload_params else 4
        states = (0 if launch.offload_params else 4) + (0 if launch.offload_optimizer else 12)
        return 4 * largest_layer + (weights * parameters + states * trained) // n  # + grads, fp32 copy, moments
    if launch.zero_stage == 0:
        return 4 * parameters + 12 * trained
    grads = 4 * trained // (n if launch.zero_stage == 2 else 1)
    return 4 * parameters + grads + (0 if launch.offload_optimizer else 12 * trained // n)


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


def vision_activation_bytes(arch: Architecture, patches: int, e: int, checkpointing: bool) -> float:
    """What the vision tower keeps for backward over ``patches`` patches: the decoder's per-layer formula
    in the tower's sizes, plus the pixel values the patch embedding saves, when the tower trains; with
    the tower frozen only the projector's input and its merged features (gradients stop there)."""
    vision = arch.vision
    if vision is None or patches == 0:
        return 0.0
    if not arch.vision_trained:
        return patches * vision.hidden * e * 2
    per_layer = layer_activation_bytes(vision, e)
    pixels = arch.patch_inputs * e
    if checkpointing:
        return patches * (vision.layers * e * vision.hidden + 2 * per_layer + pixels)
    return patches * ((vision.layers + 1) * per_layer + pixels)


def logits_bytes(arch: Architecture, positions: int, e: int) -> float:
    """Logits in the model dtype, their fp32 log-softmax (kept for backward) and its fp32 gradient."""
    return positions * arch.vocab * (e + 4 + 4)


@dataclass
class Term:
    name: str
    bytes: float
    cut: str  # how to make it smaller


def plan_terms(recipe, stage: str, arch: Architecture, launch: Launch,
               prompt_tokens: int, image_patches: int = 0) -> tuple[list[Term], list[Term]]:
    """(training-step terms, generation terms); generation only for RL. ``prompt_tokens``: the longest
    prompt, its image tokens included; ``image_patches``: vision-tower patches per sequence."""
    # DeepSpeed's bf16/fp16 casts an fp32 recipe's model to 16 bits
    e = 2 if launch.deepspeed and launch.mixed_precision else BYTES[recipe.model.dtype]
    param_bytes = e
    micro = recipe.train.micro_batch_size
    trained = arch.trained_parameters
    states = Term("parameters, gradients and optimizer states"
                  + (f" ({trained / 1e6:.1f}M of {arch.parameters / 1e6:.1f}M parameters trained)"
                     if trained != arch.parameters else ""),
                  # peft keeps adapters in fp32 under a 16-bit base; DeepSpeed's mixed precision casts them
                  model_states_bytes(arch.parameters, arch.largest_layer, launch, param_bytes, trained,
                                     4 if recipe.model.lora is not None and not launch.deepspeed else None),
                  "more processes with ZeRO-3, offload_optimizer/offload_param to CPU, or model.lora / "
                  "model.freeze_vision")
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
    if arch.vision is not None and image_patches:
        tower = "the tower trains" if arch.vision_trained else "the tower frozen: projector input only"
        train.append(Term(f"vision activations ({micro} x {image_patches} patches, {tower})",
                          vision_activation_bytes(arch, micro * image_patches, e, checkpointing),
                          "model.freeze_vision: true, or smaller images (the image processor's longest_edge)"))
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
    rows, length = generate_call(recipe, launch.processes, prompt_tokens)
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


def generate_call(recipe, processes: int, prompt_tokens: int) -> tuple[int, int]:
    """(rows, tokens per row) of the largest generate call one process makes: a rollout (this process's
    share of the examples, over-sampled up to the sampler's ``max_expansion``, times G) or, with held-out
    data, an evaluation (its share of ``eval_max_examples`` times ``eval_samples``); each at most
    ``rollout.max_rows_per_generate`` rows."""
    import math

    cap = recipe.rollout.max_rows_per_generate
    expansion = getattr(getattr(recipe.sampler, recipe.sampler.name, None), "max_expansion", 1.0)
    rollout = math.ceil(recipe.rl.batch_size * expansion / processes) * recipe.rollout.group_size
    calls = [(min(cap, rollout), prompt_tokens + recipe.rollout.max_new_tokens)]
    if recipe.data.eval:
        examples = recipe.train.eval_max_examples
        share = cap if examples is None else math.ceil(examples / processes) * max(recipe.train.eval_samples, 1)
        calls.append((min(cap, share), prompt_tokens + recipe.train.eval_max_new_tokens))
    return max(calls, key=lambda call: call[0] * call[1])


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


def longest_prompt(recipe, limit: int = 20_000, images: bool = False, examples: list[dict] | None = None) -> int:
    """Tokens of the longest rendered prompt among the first ``limit`` RL examples (an image's
    placeholder counted as written, before the processor expands it); ``examples``: ``data.train``
    already read."""
    from rlcs.chat import example_prompt
    from rlcs.data import load_examples
    from rlcs.runtime import load_tokenizer

    tokenizer = load_tokenizer(recipe.model)
    if examples is None:
        examples = load_examples(recipe.data.train, recipe.data.split, images=images)
    examples = examples[:limit]
    return max(len(tokenizer(example_prompt(tokenizer, e), add_special_tokens=False)["input_ids"]) for e in examples)


def largest_image_patches(recipe, limit: int = 20_000, examples: list[dict] | None = None) -> int | None:
    """Vision-tower patches of the row with the most, among the first ``limit`` rows of ``data.train``,
    at the sizes the model's own image processor resizes them to; None without image rows.
    ``examples``: an RL recipe's ``data.train`` already read (with its images)."""
    from PIL import Image

    from rlcs.data import load_documents, load_examples, load_sft_conversations
    from rlcs.runtime import load_processor

    if hasattr(recipe.data, "text_field"):  # pretraining: image-caption documents
        rows = [{"images": d.images} for d in load_documents(recipe.data.train, recipe.data.text_field,
                                                             recipe.data.split, images=True)]
    elif examples is not None:
        rows = examples
    elif hasattr(recipe, "rollout"):
        rows = load_examples(recipe.data.train, recipe.data.split, images=True)
    else:
        rows = [{"images": c.images} for c in load_sft_conversations(recipe.data.train, recipe.data.split, images=True)]
    paths = [row.get("images") or [] for row in rows[:limit]]
    if not any(paths):
        return None
    image_processor = load_processor(recipe.model).image_processor

    def patches(path: str) -> int:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
        return image_processor.get_number_of_image_patches(height, width, {})

    return max(sum(patches(path) for path in row) for row in paths)


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
    from rlcs.data import load_examples

    recipe_path = Path(args.recipe)
    raw = yaml.safe_load(recipe_path.read_text()) or {}
    stage = stage_of(recipe_path, raw, args.stage)
    schema = {"pretrain": PretrainRecipe, "sft": SFTRecipe, "rl": RLRecipe}[stage]
    overrides = ([f"model.path={args.model}"] if args.model else []) + list(args.overrides)
    def given(key: str):  # the value data.<key> will have: the last override, else the recipe's
        return next((o.split("=", 1)[1] for o in reversed(overrides) if o.startswith(f"data.{key}=")),
                    (raw.get("data") or {}).get(key))

    def not_written_yet(path) -> bool:
        return isinstance(path, str) and path.endswith((".jsonl", ".json", ".parquet", ".csv")) \
            and not Path(path).expanduser().exists()

    data, evaluation = given("train"), given("eval")
    data_missing = not_written_yet(data)
    if data_missing or not_written_yet(evaluation):  # planning needs no data, only its sizes
        placeholder = Path(tempfile.mkdtemp()) / "none.jsonl"
        placeholder.write_text("")
        if not_written_yet(evaluation):  # the run will evaluate: its generate calls still count
            overrides.append(f"data.eval={placeholder}")
        if data_missing:  # the longest RL prompt then comes from --prompt-tokens, or is 1024
            overrides.append(f"data.train={placeholder}")
            if stage == "rl" and args.prompt_tokens is None:
                args.prompt_tokens = 1024
                print(f"{data} does not exist yet: assuming prompts of up to 1024 tokens (--prompt-tokens to set it)")
    recipe = load_recipe(recipe_path, schema, overrides)
    launch = read_launch(args.accelerate)
    try:
        arch = read_architecture(recipe.model.path, recipe.model.trust_remote_code, recipe.model.freeze_vision,
                                 recipe.model.lora)
    except OSError as exc:  # a hub id with no network, or a directory without config.json
        print(f"error: cannot read the model config of {recipe.model.path!r}: {exc}", file=sys.stderr)
        return 2
    images = arch.vision is not None
    examples = None  # an RL recipe's data.train, read once (its images verified once) for both sizes below
    if stage == "rl" and not data_missing and (args.prompt_tokens is None or (images and args.image_patches is None)):
        examples = load_examples(recipe.data.train, recipe.data.split, images=arch.vision is not None)
    prompt_tokens = args.prompt_tokens
    if stage == "rl" and prompt_tokens is None:
        try:
            prompt_tokens = longest_prompt(recipe, examples=examples)
        except OSError as exc:  # no tokenizer beside a config-only directory, or a hub id offline
            prompt_tokens = 1024
            print(f"cannot load the tokenizer to measure the prompts ({exc}); assuming prompts of up to 1024 tokens "
                  "(--prompt-tokens to set it)")
        else:
            print(f"longest prompt in {recipe.data.train}: {prompt_tokens} text tokens (--prompt-tokens to set it)")
    image_patches = 0
    if images:
        image_patches = args.image_patches
        if image_patches is None and not data_missing:
            try:
                image_patches = largest_image_patches(recipe, examples=examples)
            except OSError as exc:  # the processor of a hub id, offline
                print(f"cannot load the processor to size the data's images: {exc}")
            else:
                if image_patches is not None:
                    print(f"largest image input in {recipe.data.train}: {image_patches} patches "
                          "(--image-patches to set it)")
                else:
                    image_patches = 0
        if image_patches is None:
            image_patches = 1024
            print("assuming images of up to 1024 vision patches per sequence, a 448x448 image "
                  "(--image-patches to set it)")
    if stage == "rl" and image_patches:  # each image's placeholder becomes patches / merge^2 tokens
        prompt_tokens = (prompt_tokens or 0) + image_patches // (arch.merge * arch.merge)
    train, generation = plan_terms(recipe, stage, arch, launch, prompt_tokens or 0, image_patches)
    title = (f"rlcs plan: {recipe_path} ({stage}), {arch.parameters / 1e6:.2f}M parameters "
             f"(largest module {arch.largest_layer / 1e6:.2f}M), {recipe.model.dtype}; {launch.describe()}")
    print(format_plan(title, train, generation, launch.processes, args.gpu_memory))
    return 0
