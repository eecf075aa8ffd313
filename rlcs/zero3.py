"""ZeRO-3 specifics: whole-model weights for generation, one parameter at a time for a weight sync,
and a frozen reference model.

Generation under ZeRO-3. DeepSpeed's module hooks fetch each layer's partitioned
parameters before its forward and re-partition them after, so a plain
``generate`` re-gathers every layer at every decoding step. Gathering the whole
model first does not help while the hooks are in place: their release step
re-partitions what was gathered. ``generation_weights`` therefore gathers the
parameters once, removes the hooks for the duration of generation and puts them
back before the parameters are partitioned again (TRL does the same; names
checked against DeepSpeed 0.19). The cost is one full copy of the weights per
process while generating, which ``rlcs plan`` counts.
"""

from __future__ import annotations

import contextlib


def unwrapped_model(model, accelerator):
    """The model under accelerate's (or DeepSpeed's) wrapper; the model itself without an accelerator."""
    return accelerator.unwrap_model(model) if accelerator is not None else model


def is_zero3(accelerator) -> bool:
    plugin = getattr(getattr(accelerator, "state", None), "deepspeed_plugin", None)
    return plugin is not None and plugin.zero_stage == 3


def fill_bucket_sizes(accelerator, model) -> None:
    """DeepSpeed config entries set to "auto" that accelerate sizes from ``model.config.hidden_size``,
    sized from the text config's hidden size where the config has none of its own (image-text models
    such as GLM-4V and Qwen2.5-VL keep it under ``text_config``, and accelerate would stop). Call before
    ``prepare``; the same formulas as accelerate's."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    config = getattr(model, "config", None)
    if plugin is None or config is None or hasattr(config, "hidden_size") or hasattr(config, "hidden_sizes"):
        return
    text = config.get_text_config() if hasattr(config, "get_text_config") else None
    hidden = getattr(text, "hidden_size", None)
    if hidden is None:
        return
    sizes = {"reduce_bucket_size": hidden * hidden, "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
             "stage3_param_persistence_threshold": 10 * hidden}
    zero = plugin.deepspeed_config.setdefault("zero_optimization", {})
    for key, value in sizes.items():
        if zero.get(key) == "auto":
            zero[key] = value


@contextlib.contextmanager
def generation_weights(model, accelerator):
    """The unwrapped model with all of its weights present, for as long as the block runs. Collective
    under ZeRO-3: every process must enter it the same number of times."""
    unwrapped = unwrapped_model(model, accelerator)
    if not is_zero3(accelerator):
        yield unwrapped
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(model.parameters())):
        offload = _parameter_offload(model)
        _remove_hooks(offload)
        try:
            yield unwrapped
        finally:
            _add_hooks(offload)  # inside the gather, so DeepSpeed's bookkeeping sees whole parameters


def parameters_one_at_a_time(model, accelerator):
    """``(name, tensor)`` for every parameter of the unwrapped model, in order. Under ZeRO-3 each is
    gathered, copied and released before the next (so no process holds a second full copy), which makes
    every step a collective: every process must consume the whole iterator."""
    unwrapped = unwrapped_model(model, accelerator)
    zero3 = is_zero3(accelerator)
    for name, parameter in unwrapped.named_parameters():
        yield name, whole_parameter(parameter, zero3)


def whole_parameter(parameter, zero3: bool):
    """The parameter's full tensor: under ZeRO-3 a gathered copy (the shard is released on return;
    collective), otherwise the parameter's own data."""
    if not zero3:
        return parameter.data.detach()
    import deepspeed

    with deepspeed.zero.GatheredParameters([parameter], modifier_rank=None):
        return parameter.data.detach().clone()


def _parameter_offload(engine):
    """The object holding the hooks: the ZeRO-3 optimizer's ``parameter_offload`` for a training engine,
    the engine's ``optimizer`` itself for one built without an optimizer (a reference model)."""
    optimizer = getattr(engine, "optimizer", None)
    if optimizer is None:
        raise RuntimeError("a ZeRO-3 model must be a DeepSpeed engine (accelerator.prepare) to generate with it")
    return getattr(optimizer, "parameter_offload", optimizer)


def _remove_hooks(offload) -> None:
    from deepspeed.runtime.zero.partitioned_param_coordinator import iter_params

    for param in iter_params(offload.module, recurse=True):
        param.ds_active_sub_modules.clear()  # else leaving the gather refuses to free them
    for hook in offload.forward_hooks + offload.backward_hooks:
        hook.remove()
    offload.forward_hooks, offload.backward_hooks = [], []


def _add_hooks(offload) -> None:
    coordinator = offload.get_param_coordinator()
    if not coordinator.is_invalid_trace():
        coordinator._invalidate_trace()  # the recorded fetch order does not include generation's forwards
    offload._register_deepspeed_module(offload.module)


def reference_model(recipe_model, accelerator):
    """A frozen copy of the starting policy for the KL term, loaded from the checkpoint rather than
    copied from the policy (whose parameters ZeRO-3 has already partitioned). Under DeepSpeed it gets
    its own inference engine (no optimizer) with the training config's ZeRO stage; otherwise it is
    moved to the device."""
    from rlcs.runtime import load_model

    model = load_model(recipe_model).eval().requires_grad_(False)
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return model.to(accelerator.device)
    import copy

    import deepspeed

    config = _without_auto(copy.deepcopy(plugin.deepspeed_config))
    for key in ("optimizer", "scheduler", "train_batch_size", "gradient_accumulation_steps"):
        config.pop(key, None)
    zero = config.setdefault("zero_optimization", {})
    zero.pop("offload_optimizer", None)
    if zero.get("stage", 0) != 3:
        zero["stage"] = 0  # ZeRO-1/2 shard optimizer state and gradients, which a frozen model has none of
    config.setdefault("train_micro_batch_size_per_gpu", 1)
    engine, *_ = deepspeed.initialize(model=model, config=config)
    engine.eval()  # DeepSpeedEngine.eval() returns None, not the engine
    return engine


def _without_auto(config: dict) -> dict:
    """accelerate fills ``"auto"`` values only in the config of the engine it prepares; DeepSpeed's own
    defaults serve the reference engine."""
    return {key: _without_auto(value) if isinstance(value, dict) else value
            for key, value in config.items() if value != "auto"}
