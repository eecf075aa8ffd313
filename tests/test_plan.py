"""`rlcs plan`: its activation model against what autograd keeps, the launcher configs it reads, and
the verdict it prints."""

import pytest
import torch

from rlcs.plan import GIB, Launch, activation_bytes, model_states_bytes, read_architecture, read_launch

from .conftest import REPO, run_rlcs


def saved_bytes(model, forward) -> int:
    """Bytes of the tensors autograd keeps for backward while ``forward()`` runs, ``model``'s parameters
    excluded (each storage once)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(storages.values())


@pytest.mark.parametrize("checkpointing", [False, True])
def test_activation_estimate_matches_what_autograd_keeps(micro_model_dir, checkpointing):
    from rlcs.config import ModelConfig
    from rlcs.runtime import load_model

    model = load_model(ModelConfig(path=str(micro_model_dir), gradient_checkpointing=checkpointing)).train()
    arch = read_architecture(str(micro_model_dir))
    tokens = 4 * 128
    ids = torch.randint(5, arch.vocab, (4, 128))
    measured = saved_bytes(model, lambda: model(input_ids=ids, labels=ids, use_cache=False))
    planned = activation_bytes(arch, tokens, 4, checkpointing) + tokens * arch.vocab * 4  # + saved log-softmax
    from rlcs.plan import layer_activation_bytes

    # what the forward keeps: without the backward's working set (one layer's gradients, and with
    # checkpointing that layer's recomputed activations too)
    planned -= tokens * layer_activation_bytes(arch, 4) * (2 if checkpointing else 1)
    assert planned == pytest.approx(measured, rel=0.15), (planned, measured)


def test_launcher_configs_are_read_for_processes_stage_offload_and_precision():
    cpu = read_launch(REPO / "recipes/accelerate/cpu_zero3.yaml")
    assert (cpu.processes, cpu.deepspeed, cpu.zero_stage, cpu.mixed_precision) == (2, True, 3, False)
    gpu = read_launch(REPO / "recipes/accelerate/zero3_4gpu.yaml")
    assert (gpu.processes, gpu.zero_stage, gpu.mixed_precision) == (4, 3, True)
    assert read_launch(None) == Launch()


def test_model_states_follow_deepspeeds_byte_counts():
    p, largest = 1_000_000_000, 100_000_000
    assert model_states_bytes(p, largest, Launch(), 4) == 16 * p  # fp32 AdamW: weights, grads, 2 moments
    zero2 = Launch(processes=4, deepspeed=True, zero_stage=2, mixed_precision=True)
    assert model_states_bytes(p, largest, zero2, 2) == 2 * p + 18 * p // 4
    zero3 = Launch(processes=4, deepspeed=True, zero_stage=3, mixed_precision=True)
    assert model_states_bytes(p, largest, zero3, 2) == 4 * largest + 18 * p // 4
    offload = Launch(processes=4, deepspeed=True, zero_stage=3, mixed_precision=True, offload_optimizer=True,
                     offload_params=True)
    assert model_states_bytes(p, largest, offload, 2) == 4 * largest


def test_frozen_weights_are_held_without_gradients_or_optimizer_states():
    """freeze_vision and LoRA: T trained, F frozen, each launcher's bytes worked out by hand."""
    p, t, largest = 1_000_000_000, 100_000_000, 50_000_000
    f = p - t
    assert model_states_bytes(p, largest, Launch(), 2, t) == 8 * t + 2 * f  # bf16 AdamW on T, weights of F
    assert model_states_bytes(p, largest, Launch(), 2, t, trained_bytes=4) == 16 * t + 2 * f  # fp32 adapters
    zero2 = Launch(processes=4, deepspeed=True, zero_stage=2, mixed_precision=True)
    assert model_states_bytes(p, largest, zero2, 2, t) == 2 * t + 18 * t // 4 + 2 * f
    zero3 = Launch(processes=4, deepspeed=True, zero_stage=3, mixed_precision=True)
    assert model_states_bytes(p, largest, zero3, 2, t) == 4 * largest + 18 * t // 4 + 2 * f // 4
    fp32_zero3 = Launch(processes=4, deepspeed=True, zero_stage=3)
    assert model_states_bytes(p, largest, fp32_zero3, 4, t) == 4 * largest + (4 * p + 16 * t) // 4
    # all trained: the same bytes as before frozen weights were counted
    assert model_states_bytes(p, largest, zero3, 2, p) == model_states_bytes(p, largest, zero3, 2)


def test_plan_prints_the_peak_and_the_term_to_cut(micro_model_dir, suite_dir):
    args = ["plan", "recipes/tiny/rl.yaml", f"model.path={micro_model_dir}", f"data.train={suite_dir / 'rl.jsonl'}",
            "data.eval=null"]
    options = ["--accelerate", "recipes/accelerate/cpu_zero3.yaml"]
    fits = run_rlcs([*args, *options, "--gpu-memory", "80"]).stdout
    assert "DeepSpeed ZeRO-3" in fits and "KV cache" in fits and "fits on 2 x 80 GiB" in fits
    tight = run_rlcs([*args, "train.micro_batch_size=64", *options, "--gpu-memory", "0.01"]).stdout
    assert "does not fit on 2 x 0.01 GiB: the biggest term is activations" in tight
    assert "model.gradient_checkpointing: true" in tight
    assert GIB == 2**30


def test_plan_needs_no_data_files(micro_model_dir):
    """Planning happens before the data exists: the RL prompt length then defaults (and says so)."""
    out = run_rlcs(["plan", "recipes/tiny/rl.yaml", f"model.path={micro_model_dir}", "data.train=/nowhere/rl.jsonl",
                    "data.eval=null", "--gpu-memory", "80"]).stdout
    assert "/nowhere/rl.jsonl does not exist yet: assuming prompts of up to 1024 tokens" in out
    # the largest rollout: 8 examples over-sampled up to RLCS's max_expansion of 3, times G=8
    assert "KV cache of one generate call (192 rows x 1152 tokens)" in out and "fits on 1 x 80 GiB" in out


def test_plan_sizes_the_kv_cache_by_the_largest_generate_call(micro_model_dir, suite_dir):
    """A rollout's rows are the process's share of the batch times G; an evaluation's its share of the
    held-out items times eval_samples; both capped at rollout.max_rows_per_generate."""
    base = ["plan", "recipes/tiny/rl.yaml", f"model.path={micro_model_dir}", f"data.train={suite_dir / 'rl.jsonl'}",
            "sampler.name=uniform"]
    prompt = ["--prompt-tokens", "100"]
    assert "(64 rows x 228 tokens)" in run_rlcs([*base, "data.eval=null", *prompt]).stdout  # 8 x G=8, 100 + 128
    two = run_rlcs([*base, "data.eval=null", *prompt, "--accelerate", "recipes/accelerate/cpu_zero3.yaml"]).stdout
    assert "(32 rows x 228 tokens)" in two  # 4 examples per process
    evaluated = [*base, f"data.eval={suite_dir / 'eval.jsonl'}", "train.eval_max_examples=20", "train.eval_samples=5",
                 "train.eval_max_new_tokens=200"]
    assert "(100 rows x 300 tokens)" in run_rlcs([*evaluated, *prompt]).stdout
    assert "(64 rows x 300 tokens)" in run_rlcs([*evaluated, "rollout.max_rows_per_generate=64", *prompt]).stdout
