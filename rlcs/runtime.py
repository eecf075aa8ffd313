"""Process-level setup shared by every stage: accelerator, model, tokenizer and processor loading."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs, set_seed
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ProcessorMixin,
)

from rlcs.config import ModelConfig, StageRecipe
from rlcs.vision import freeze_vision_tower, is_image_text_config, load_image_text_processor

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _wandb_offline_unless_configured() -> None:
    """Never block on a login prompt: without credentials or an explicit mode, log offline."""
    if "WANDB_MODE" in os.environ or "WANDB_API_KEY" in os.environ:
        return
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return
    os.environ["WANDB_MODE"] = "offline"


def make_accelerator(recipe: StageRecipe, grad_accum: int | None = None,
                     micro_batch_size: int | None = None) -> Accelerator:
    """``micro_batch_size`` is needed by DeepSpeed when no dataloader goes through ``prepare`` (RL)."""
    if recipe.logging.wandb:
        _wandb_offline_unless_configured()
    accelerator = Accelerator(
        kwargs_handlers=_cpu_deepspeed_fix(),
        gradient_accumulation_steps=grad_accum or recipe.train.grad_accum,
        log_with=["wandb"] if recipe.logging.wandb else None,
        project_dir=recipe.output_dir,
    )
    plugin = accelerator.state.deepspeed_plugin
    if plugin is not None and plugin.deepspeed_config.get("gradient_clipping", "auto") == "auto":
        # DeepSpeed clips inside its step; give it the recipe's value rather than accelerate's default.
        plugin.deepspeed_config["gradient_clipping"] = recipe.optim.max_grad_norm
    if plugin is not None and micro_batch_size:
        if plugin.deepspeed_config.get("train_micro_batch_size_per_gpu") == "auto":
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = micro_batch_size
    set_seed(recipe.seed)
    return accelerator


def _cpu_deepspeed_fix() -> list:
    """Under DeepSpeed without a GPU, accelerate finds no backend and then reports every rank
    as process 0 of 1 (DeepSpeed itself runs a 2-rank gloo group): both ranks would act as
    main and data would not be sharded. Naming the gloo backend makes accelerate see the
    real world size and rank."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" and not torch.cuda.is_available():
        return [InitProcessGroupKwargs(backend="gloo")]
    return []


def load_tokenizer(config: ModelConfig) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(
        config.tokenizer or config.path, trust_remote_code=config.trust_remote_code
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_processor(config: ModelConfig) -> ProcessorMixin:
    """The processor (tokenizer + image processor) of an image-text model (rlcs/vision.py)."""
    return load_image_text_processor(config.tokenizer or config.path, trust_remote_code=config.trust_remote_code)


def model_class(config: ModelConfig) -> type:
    """The auto class that loads ``config.path``: image-text-to-text when transformers maps the
    checkpoint's config class to such a model (GLM-4V), else the causal LM as for any text model."""
    hf_config = AutoConfig.from_pretrained(config.path, trust_remote_code=config.trust_remote_code)
    return AutoModelForImageTextToText if is_image_text_config(hf_config) else AutoModelForCausalLM


def image_text_processor(config: ModelConfig) -> ProcessorMixin | None:
    """The processor of an image-text model, None for a text model: where it is not None, data may carry
    images, rows go through it, and it is saved beside the model."""
    return load_processor(config) if model_class(config) is AutoModelForImageTextToText else None


def load_model(config: ModelConfig) -> PreTrainedModel:
    """``from_pretrained`` for a tiny local model and a 9B hub model alike (ZeRO-3 partitions at load)."""
    model = model_class(config).from_pretrained(
        config.path,
        dtype=DTYPES[config.dtype],
        attn_implementation=config.attn_implementation,
        trust_remote_code=config.trust_remote_code,
    )
    if config.gradient_checkpointing:
        # Non-reentrant: gradients reach every parameter even when the inputs need none (frozen
        # embeddings, adapters). transformers 5 renamed the method; 4.x has only the old name.
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def load_trainable_model(config: ModelConfig) -> PreTrainedModel:
    """The model a stage trains: ``load_model``, its vision tower frozen and LoRA adapters added when
    the recipe asks for them."""
    model = load_model(config)
    if config.freeze_vision:
        freeze_vision_tower(model)
    if config.lora is None:
        return model
    from rlcs.lora import apply_lora

    return apply_lora(model, config.lora, skip_vision=config.freeze_vision)


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(full size, elements held by this rank); they differ once ZeRO-3 has partitioned the model."""
    full = local = 0
    for param in model.parameters():
        if hasattr(param, "ds_numel"):
            full += param.ds_numel
            local += param.ds_tensor.numel()
        else:
            full += param.numel()
            local += param.numel()
    return full, local
