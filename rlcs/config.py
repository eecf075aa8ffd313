"""Typed recipes: YAML + dotted overrides -> validated config objects.

Everything is checked before any compute: an unknown key, a wrong type or a
missing file raises ``RecipeError`` naming the recipe file, the key path and,
for a misspelt key, the closest valid one.
"""

from __future__ import annotations

import difflib
import os
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    create_model,
    model_validator,
)

from rlcs.curriculum.registry import SAMPLERS

DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file and the key path."""


def _local_data_file(value: str) -> str:
    """A data source is a local file or a hub dataset id; a local-looking one must exist."""
    looks_local = value.endswith(DATA_SUFFIXES) or value.startswith(("/", "./", "../", "~"))
    if looks_local and not Path(value).expanduser().exists():
        raise ValueError(f"file not found: {value}")
    return value


def _model_source(value: str) -> str:
    """A model is a local directory or a hub id ('name' or 'org/name')."""
    path = Path(value).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ValueError(f"{value} is not a Hugging Face model directory (no config.json)")
        return value
    looks_like_hub_id = value.count("/") <= 1 and not value.startswith(("/", ".", "~"))
    if not looks_like_hub_id:
        raise ValueError(f"model directory not found: {value}")
    return value


DataSource = Annotated[str, AfterValidator(_local_data_file)]
ModelSource = Annotated[str, AfterValidator(_model_source)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraConfig(Section):
    """LoRA adapters through peft (rlcs/lora.py): the base model is frozen, only the adapters train."""

    r: int = Field(16, ge=1, description="adapter rank")
    alpha: float = Field(32, gt=0, description="scale: the update is alpha / r · B @ A")
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="module names to adapt, or every linear layer but the output head")


class ModelConfig(Section):
    path: ModelSource = Field(description="HF model directory or hub id to start from")
    tokenizer: ModelSource | None = Field(None, description="defaults to model.path")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    attn_implementation: str | None = None
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    lora: LoraConfig | None = Field(None, description="train LoRA adapters instead of every weight")
    freeze_vision: bool = Field(False, description="image-text models: keep the vision tower (ViT) fixed; the "
                                "projector and the decoder train (with lora: no adapters in the tower)")


class OptimConfig(Section):
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    max_grad_norm: float = Field(1.0, gt=0)
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine floor as a share of lr")
    lr_vision: float | None = Field(None, gt=0, description="image-text models: the vision tower's lr (default lr)")
    lr_projector: float | None = Field(None, gt=0, description="image-text models: the projector's lr (default lr)")


class TrainConfig(Section):
    micro_batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; else from epochs")
    epochs: float = Field(1.0, gt=0)
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(100, ge=1)
    eval_max_batches: int | None = Field(None, ge=1)
    save_every: int = Field(0, ge=0, description="0: only the final model")
    keep_checkpoints: int = Field(2, ge=1)
    resume: str = Field("auto", description="auto: newest complete checkpoint in output_dir; never; or a path")
    max_nonfinite_in_row: int = Field(5, ge=1, description="non-finite losses in a row before stopping")


class LoggingConfig(Section):
    wandb: bool = True
    project: str = "rlcs"
    run_name: str | None = None


class PretrainData(Section):
    train: DataSource
    eval: DataSource | None = None
    text_field: str = "text"
    seq_len: int = Field(512, ge=8)
    split: str = "train"


class SFTData(Section):
    train: DataSource
    eval: DataSource | None = None
    seq_len: int = Field(512, ge=8)
    packing: bool = Field(True, description="pack examples into full blocks; else pad each batch")
    split: str = "train"


class StageRecipe(Section):
    output_dir: str
    seed: int = 0
    model: ModelConfig
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    logging: LoggingConfig = LoggingConfig()


class PretrainRecipe(StageRecipe):
    data: PretrainData


class SFTRecipe(StageRecipe):
    data: SFTData


class RLData(Section):
    train: DataSource
    eval: DataSource | None = None
    split: str = "train"


class RewardTerm(Section):
    verifier: str = Field(description="registered name, package.module:fn, path/file.py:fn or entry point")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    weight: float = 1.0


class RewardEntry(Section):
    """One verifier (``verifier`` + ``kwargs``) or a weighted sum of several (``terms``)."""

    verifier: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    terms: list[RewardTerm] | None = None
    min_reward: float = 0.0

    @model_validator(mode="after")
    def _one_form(self) -> RewardEntry:
        if (self.verifier is None) == (self.terms is None):
            raise ValueError("give either 'verifier' (with 'kwargs') or 'terms', not both or neither")
        return self


class RewardWorkersConfig(Section):
    workers: int = Field(2, ge=0, description="verifier processes per training process; 0 scores in-process")
    timeout_s: float = Field(10.0, gt=0, description="wall-clock limit of one verifier call")
    memory_mb: int | None = Field(2048, ge=64, description="address-space limit of each verifier process (the "
                                  "code sandbox inherits it); null for none")


class RewardFailureBudget(Section):
    """Stop a run whose rewards are mostly verifier failures (each scored as the domain's minimum)."""

    max_share: float = Field(0.2, ge=0, le=1, description="share of a step's rewards that may fail; 1: no limit")
    steps_in_row: int = Field(3, ge=1, description="steps in a row over max_share before the run stops")


class VLLMConfig(Section):
    """``rollout.engine: vllm`` (docs/vllm.md): one engine colocated in each training process."""

    gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="GPU: share of the device's memory "
                                          "for vLLM's weights and KV cache; the rest stays with training")
    cpu_kv_cache_gib: int = Field(1, ge=1, description="CPU: KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE)")
    max_model_len: int | None = Field(None, ge=1, description="longest prompt + completion; default: the "
                                      "model's context length")
    sleep_mode: bool = Field(False, description="GPU: free the engine's weights and KV cache during each "
                             "policy update (vLLM sleep mode)")
    enforce_eager: bool = Field(True, description="no CUDA graphs: they cost start-up time and memory")
    request_seeds: bool = Field(True, description="a seed per request, drawn from (seed, rank): samples are "
                                "reproducible whatever else draws random numbers; false samples from the "
                                "engine's own generator, faster on CPU (docs/benchmarks.md)")


class RolloutConfig(Section):
    engine: Literal["hf", "vllm"] = Field("hf", description="hf: transformers generate on the policy itself; "
                                          "vllm: a colocated vLLM engine per process (docs/vllm.md)")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)
    group_size: int = Field(8, ge=2, description="G completions per example")
    max_new_tokens: int = Field(256, ge=1)
    answer_budget: int = Field(32, ge=1, description="tokens for the answer after a forced </think>")
    force_answer: bool = True
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0: off")
    max_rows_per_generate: int = Field(256, ge=1, description="sequences per generate call (rollout, eval, "
                                       "force answering); bounds the KV cache of one call")

    @model_validator(mode="after")
    def _room_to_think(self) -> RolloutConfig:
        if self.force_answer and self.max_new_tokens <= self.answer_budget:
            raise ValueError(f"max_new_tokens ({self.max_new_tokens}) must exceed answer_budget "
                             f"({self.answer_budget}): force answering reserves the budget out of it")
        return self


def _sampler_config() -> type[Section]:
    """The recipe's ``sampler`` section, from the registry: ``name`` picks a sampler, and each sampler with
    options has its own subsection (``sampler.rlcs``, ``sampler.dapo``), so a key means one thing to one
    sampler. Sections of samplers not named are validated and ignored, so ``sampler.name=uniform`` works
    on a recipe that tunes ``rlcs``."""
    names = tuple(SAMPLERS)
    fields: dict[str, Any] = {"name": (Literal[names], Field("rlcs", description=f"one of {', '.join(names)}"))}
    for name, cls in SAMPLERS.items():
        if cls.Options is not None:
            fields[name] = (cls.Options, Field(default_factory=cls.Options,
                                               description=f"the {name} sampler's options, used when name is {name}"))
    return create_model("SamplerConfig", __base__=Section, __doc__="Which examples each RL step rolls out "
                        "(docs/curriculum.md explains every knob).", **fields)


SamplerConfig = _sampler_config()


def _moved_sampler_keys() -> dict[str, str]:
    """``sampler.<key>`` -> where it lives now, for every key of a sampler's own section: before issue #12
    all samplers shared one flat section, so ``sampler.prior_strength`` names a key that moved."""
    moved: dict[str, list[str]] = {}
    for name, cls in SAMPLERS.items():
        for key in cls.Options.model_fields if cls.Options is not None else ():
            if key not in SamplerConfig.model_fields:
                moved.setdefault(f"sampler.{key}", []).append(f"sampler.{name}.{key}")
    return {old: " or ".join(new) for old, new in moved.items()}


MOVED_KEYS = _moved_sampler_keys()


class PolicyConfig(Section):
    batch_size: int = Field(8, ge=1, description="examples per step, all processes together")
    ppo_epochs: int = Field(1, ge=1)
    mini_batches: int = Field(1, ge=1, description="optimizer steps per epoch over a rollout batch")
    eps_low: float = Field(0.2, ge=0, lt=1)
    eps_high: float = Field(0.28, ge=0)
    dual_clip: float | None = Field(None, gt=1)
    aggregation: Literal["per_sample", "token", "seq_sum_norm"] = "per_sample"
    scale_adv_by_std: bool = True
    kl_coef: float = Field(0.0, ge=0, description="> 0 adds k3 KL to a frozen copy of the start model")
    entropy_coef: float = Field(0.0, ge=0)
    pass_threshold: float = Field(1.0, description="a reward at or above this counts as a pass")


class RLTrainConfig(Section):
    steps: int = Field(50, ge=1)
    max_rollouts: int | None = Field(None, ge=1, description="stop once this many completions were generated")
    micro_batch_size: int = Field(16, ge=1, description="sequences per forward/backward")
    log_every: int = Field(1, ge=1)
    eval_every: int = Field(0, ge=0, description="0: only before and after training")
    eval_max_examples: int | None = Field(200, ge=1)
    eval_max_new_tokens: int = Field(256, ge=1)
    eval_samples: int = Field(4, ge=0, description="completions per held-out item sampled at the rollout "
                              "temperature for eval pass@1; 0: greedy only")
    completions_every: int = Field(10, ge=1)
    completions_logged: int = Field(4, ge=1)
    save_every: int = Field(0, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    resume: str = Field("auto", description="auto: newest complete checkpoint in output_dir; never; or a path")
    max_nonfinite_in_row: int = Field(5, ge=1, description="non-finite losses in a row before stopping")


class RLRecipe(Section):
    output_dir: str
    seed: int = 0
    model: ModelConfig
    data: RLData
    rewards: dict[str, RewardEntry] = Field(description="domain -> verifier")
    reward_workers: RewardWorkersConfig = RewardWorkersConfig()
    reward_failures: RewardFailureBudget = RewardFailureBudget()
    rollout: RolloutConfig = RolloutConfig()
    sampler: SamplerConfig = SamplerConfig()
    rl: PolicyConfig = PolicyConfig()
    optim: OptimConfig = OptimConfig(lr=1e-5, warmup_steps=0, schedule="constant")
    train: RLTrainConfig = RLTrainConfig()
    logging: LoggingConfig = LoggingConfig()


Count = Annotated[StrictInt, Field(ge=0)]


class SuiteRecipe(Section):
    """`rlcs data`: the synthetic task suite and the splits made from it."""

    output_dir: str
    seed: int = 0
    # text domains (rlcs/tasks/) and image domains drawn with Pillow (rlcs/tasks/visual.py); image rows need
    # an image-text model
    domains: list[Literal["arithmetic", "algebra", "choice", "transcription", "counting",
                          "shapes", "ocr", "grounding", "chart"]] = [
        "arithmetic", "algebra", "choice", "transcription", "counting",
    ]
    levels: list[int] = [1, 2, 3, 4]
    eval_per_level: int = Field(50, ge=1)
    rl_per_level: StrictInt | dict[int, StrictInt] = Field(
        200, description="RL prompts per domain and level: one count for every level, or level -> count (missing "
        "levels: none); a pool drawn like the SFT set's level mix is the setting a curriculum is for")
    sft_per_level: StrictInt | dict[int, StrictInt] = Field(
        400, description="worked SFT rows per domain and level: one count for every level, or level -> count "
        "(missing levels: none)")
    pretrain_per_level: int = Field(1000, ge=0)
    pretrain_drills: int = Field(0, ge=0, description="fact-drill documents added to the pretraining corpus")
    pretrain_lookups: int = Field(0, ge=0, description="lookup-drill documents (read an item by its label) "
                                  "added to the pretraining corpus")
    pretrain_images_per_level: Count | dict[int, Count] = Field(
        0, description="image-caption documents per image domain and level added to the pretraining corpus (rows "
        "with 'images'): one count for every level, or level -> count (missing levels: none; 0 for none at all)")
    sft_unworked_per_level: dict[int, int] = Field(
        default_factory=dict, description="level -> extra SFT rows per text domain whose trace states the "
        "answer without working it out (drawn apart from the sft_per_level worked rows); missing levels: none")

    @model_validator(mode="after")
    def _per_level_counts(self) -> SuiteRecipe:
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels repeat: {self.levels}")
        for key, rows in (("rl_per_level", "RL prompts"), ("sft_per_level", "worked SFT rows"),
                          ("pretrain_images_per_level", "image captions")):
            if getattr(self, key) == {}:
                raise ValueError(f"{key} is an empty mapping: no {rows} at any level; give a count per level, or 0")
        for key in ("rl_per_level", "sft_per_level", "sft_unworked_per_level", "pretrain_images_per_level"):
            counts = self.counts_per_level(key)
            unknown = sorted(set(counts) - set(self.levels))
            if unknown:
                raise ValueError(f"{key} names levels {unknown} that are not in levels {self.levels}")
            negative = {level: n for level, n in counts.items() if n < 0}
            if negative:
                raise ValueError(f"{key} counts must be >= 0, got {negative}")
        return self

    def counts_per_level(self, key: str) -> dict[int, int]:
        """``key``'s rows per level (a single count applies to every level; a level a mapping omits gets none)."""
        value = getattr(self, key)
        return {level: value for level in self.levels} if isinstance(value, int) else dict(value)


class TokenizerSpec(Section):
    corpus: list[DataSource]
    text_field: str = "text"
    vocab_size: int = Field(512, ge=64)


class InitModelSpec(Section):
    model_type: str = Field("glm4", description="any transformers model_type with a causal LM head, or glm4v "
                            "(an image-text model with its processor; docs/vision.md)")
    config: dict[str, Any] = Field(default_factory=dict, description="config kwargs (sizes); glm4v: text_config "
                                   "and vision_config mappings")
    image_processor: dict[str, Any] = Field(default_factory=dict, description="image-text models only: image "
                                            "processor kwargs, e.g. size: {shortest_edge: 12544, longest_edge: "
                                            "100352} (min and max pixel counts, two frames included)")


class InitRecipe(Section):
    """`rlcs init`: train a tokenizer and build a fresh model from a config."""

    output_dir: str
    seed: int = 0
    tokenizer: TokenizerSpec
    model: InitModelSpec = InitModelSpec()


R = TypeVar("R", bound=BaseModel)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set ``a.b.c=value`` pairs; values are parsed as YAML (``1e-4``, ``true``, ``[1, 2]``)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"override {item!r} is not of the form key.path=value")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise RecipeError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(value) if value else value
    return raw


def load_recipe(path: str | os.PathLike, schema: type[R], overrides: list[str] | None = None) -> R:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    return validate_recipe(raw, schema, source=str(path))


def validate_recipe(raw: dict, schema: type[R], source: str = "<recipe>") -> R:
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(error, schema) for error in exc.errors()]
        raise RecipeError(f"{source}: invalid recipe\n" + "\n".join(f"  {line}" for line in lines)) from None


def dump_recipe(recipe: BaseModel, path: str | os.PathLike) -> None:
    """Write the fully resolved recipe (defaults filled in) next to the run's outputs."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(recipe.model_dump(mode="json", by_alias=True), sort_keys=False))


def _describe(error: dict, schema: type[BaseModel]) -> str:
    loc = [str(part) for part in error["loc"]]
    key_path = ".".join(loc) or "<root>"
    kind = error["type"]
    if kind == "extra_forbidden":
        if key_path in MOVED_KEYS:  # a key of an older layout: say where it is now, not just that it is unknown
            return f"{key_path} moved to {MOVED_KEYS[key_path]}"
        known = _known_keys(schema, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(sorted(known))})"
        return f"{key_path}: unknown key{hint}"
    if kind == "missing":
        return f"{key_path}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    return f"{key_path}: {message} (got {got!r})"


def _known_keys(schema: type[BaseModel], parent: list[str]) -> list[str]:
    """The keys of the section at ``parent``, through optional sections (``model.lora``) and mappings of
    sections (``rewards.<domain>``, where the domain is a key of the mapping, not a field)."""
    model: Any = schema
    for part in parent:
        model = _section_type(model)
        if typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = field.annotation
    model = _section_type(model)
    if not hasattr(model, "model_fields"):
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _section_type(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (the first section or mapping among a union's members); others unchanged."""
    if hasattr(annotation, "model_fields") or typing.get_origin(annotation) is dict:
        return annotation
    for member in typing.get_args(annotation):
        if hasattr(member, "model_fields") or typing.get_origin(member) is dict:
            return member
    return annotation
