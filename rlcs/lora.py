"""LoRA through peft: wrap a model with adapters, and read its weights back merged.

The merged weights (W + scale · B @ A for every adapted layer) are what every
consumer outside training needs: the next stage, ``rlcs eval``, and a vLLM
engine, which takes plain Hugging Face parameter names. They are produced one
module at a time, so under ZeRO-3 no process ever holds a second full copy of
the model while streaming them. A run saves both the merged model (``model/``)
and the adapter alone (``adapter/``), so a LoRA run's output chains into the
next stage like any other and its adapter can be shared or merged elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from rlcs.config import LoraConfig
from rlcs.zero3 import is_zero3, unwrapped_model, whole_parameter


def apply_lora(model, config: LoraConfig, skip_vision: bool = False):
    """Freeze ``model`` and add trainable LoRA adapters to the layers ``config`` names; ``skip_vision``:
    none in an image-text model's vision tower (``model.freeze_vision``), the projector still adapted."""
    try:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model
    except ImportError as exc:  # an optional extra: only LoRA recipes need it
        raise ImportError("model.lora needs peft: pip install -e '.[lora]'") from exc
    from peft.tuners.lora import Linear as LoraLinear
    from peft.tuners.lora import LoraLayer

    tied_head = getattr(model.config, "tie_word_embeddings", False) and model.get_output_embeddings()
    exclude = None
    if skip_vision:
        from rlcs.vision import parameter_role

        exclude = [name for name, module in model.named_modules() if name and parameter_role(name) == "vision"
                   and isinstance(module, torch.nn.Linear)]
    peft_config = PeftLoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout,
                                 target_modules=config.target_modules, exclude_modules=exclude, bias="none",
                                 task_type="CAUSAL_LM")
    model = get_peft_model(model, peft_config)
    if skip_vision:
        _no_gradients_into_the_tower(model)
    for name, module in model.get_base_model().named_modules():
        if not isinstance(module, LoraLayer):
            continue
        # merged_parameters folds in linear adapters only (W + scale · B @ A); an embedding or conv
        # adapter would fail at the first weight sync or the final save, after the training is done
        if not isinstance(module, LoraLinear):
            raise ValueError(f"model.lora.target_modules: {name} is a {type(module.get_base_layer()).__name__}; "
                             "only linear layers can be adapted")
        if tied_head is not False and module.get_base_layer() is tied_head:
            raise ValueError(f"model.lora.target_modules: {name} is the output head, tied to the input "
                             "embeddings; an adapter there would change both")
    return model


def _no_gradients_into_the_tower(model) -> None:
    """With gradient checkpointing, peft asks transformers to make every sub-model's input embeddings
    output require grad (``enable_input_require_grads``), so that checkpointed layers have a graph to
    replay. For Qwen2.5-VL that includes the vision tower's patch embedding: a frozen tower would then
    record its whole forward and run backward through it for nothing. Its hooks are removed; the
    decoder's stay (its adapters need them)."""
    from rlcs.vision import parameter_role

    for name, module in model.get_base_model().named_modules():
        if not name or parameter_role(name) != "vision":
            continue
        for key, hook in list(module._forward_hooks.items()):  # transformers keeps no per-module handle
            if getattr(hook, "__name__", "") == "make_inputs_require_grads":
                del module._forward_hooks[key]


def is_lora(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def adapter_parameters(model, accelerator) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of the adapter weights alone, under peft's own names (what
    ``PeftModel.save_pretrained`` expects). Collective under ZeRO-3, like ``merged_parameters``."""
    unwrapped = unwrapped_model(model, accelerator)
    zero3 = is_zero3(accelerator)
    for name, parameter in unwrapped.named_parameters():
        if ".lora_" in name:
            yield name, whole_parameter(parameter, zero3)


def merged_parameters(model, accelerator) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of the base model with every adapter folded in, in the base model's own
    parameter names and order. Under ZeRO-3 each parameter (and an adapted layer's two adapter
    matrices) is gathered, merged, copied and released before the next, which makes every step a
    collective: every process must consume the whole iterator."""
    unwrapped = unwrapped_model(model, accelerator)
    base = unwrapped.get_base_model()
    adapter = unwrapped.active_adapter
    zero3 = is_zero3(accelerator)
    for name, parameter in base.named_parameters():
        if ".lora_" in name:
            continue
        if ".base_layer." not in name:
            yield name, whole_parameter(parameter, zero3)
            continue
        module_name, _, leaf = name.rpartition(".base_layer.")
        module = base.get_submodule(module_name)
        if leaf != "weight":  # a bias: LoRA leaves it alone
            yield f"{module_name}.{leaf}", whole_parameter(parameter, zero3)
            continue
        lora_a, lora_b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
        weight, a, b = (whole_parameter(p, zero3) for p in (parameter, lora_a, lora_b))
        delta = (b.float() @ a.float()) * module.scaling[adapter]
        if getattr(module, "fan_in_fan_out", False):
            delta = delta.T
        yield f"{module_name}.weight", (weight.float() + delta).to(weight.dtype)

