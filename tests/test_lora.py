"""LoRA through peft: merged weights equal the adapted model, stages save merged model and adapter,
and the RL stage trains only the adapters."""

import json

import pytest
import torch

from rlcs.config import LoraConfig, ModelConfig
from rlcs.lora import apply_lora, merged_parameters
from rlcs.metrics import read_metrics
from rlcs.runtime import load_model

from .conftest import run_rlcs, zero3_launcher

pytest.importorskip("peft")


def _adapted(model_dir, r=4):
    torch.manual_seed(0)
    model = apply_lora(load_model(ModelConfig(path=str(model_dir))), LoraConfig(r=r, alpha=8))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero (a no-op adapter); make the adapter change the outputs
            parameter.data.normal_(0, 0.5)
    return model


def test_merged_weights_reproduce_the_adapted_model(micro_model_dir):
    adapted = _adapted(micro_model_dir)
    plain = load_model(ModelConfig(path=str(micro_model_dir)))
    merged = dict(merged_parameters(adapted, None))
    assert list(merged) == [name for name, _ in plain.named_parameters()]  # the base model's names and order
    ids = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29]])
    with torch.no_grad():
        before = plain(ids).logits
        plain.load_state_dict(merged, strict=False)
        assert torch.allclose(plain(ids).logits, adapted(ids).logits, atol=1e-5)
    assert not torch.allclose(before, adapted(ids).logits, atol=1e-3)  # the adapter did change the model
    assert sum(p.numel() for p in adapted.parameters() if p.requires_grad) < sum(p.numel() for p in plain.parameters())


def test_zero3_lora_rl_trains_only_adapters_and_saves_merged_model_and_adapter(choice_task):
    """2 ZeRO-3 processes with the HF engine: generation with the adapters (7 held-out items split 4/3, so
    the processes generate different amounts), then the merged weights gathered for saving."""
    from transformers import AutoModelForCausalLM

    out = choice_task / "rl-lora"
    base_dir = choice_task / "sft/model"
    run_rlcs(["rl", "--config", "recipes/tiny/rl.yaml", f"output_dir={out}", f"model.path={base_dir}",
              f"data.train={choice_task / 'rl.jsonl'}", f"data.eval={choice_task / 'rl.jsonl'}",
              "train.eval_max_examples=7", "train.eval_samples=2", "train.eval_max_new_tokens=48",
              "train.steps=4", "train.max_rollouts=null",
              "rollout.max_new_tokens=96", "rollout.answer_budget=16", "rollout.temperature=0.7", "optim.lr=5e-2",
              "model.lora.r=4", "train.micro_batch_size=8", "logging.wandb=false"], launcher=zero3_launcher(29545))
    assert [r["step"] for r in read_metrics(out) if "reward/mean" in r] == [1, 2, 3, 4]
    assert json.loads((out / "run_info.json").read_text())["num_processes"] == 2
    evals = [r for r in read_metrics(out) if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [0, 4] and all(r["eval/examples"] == 7 for r in evals)
    adapter = json.loads((out / "model/adapter/adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["peft_type"] == "LORA"
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    trained = AutoModelForCausalLM.from_pretrained(out / "model")  # the merged model loads as a plain one
    changed = {name for (name, a), (_, b) in zip(base.named_parameters(), trained.named_parameters())
               if not torch.equal(a, b)}
    assert changed, "the adapters never trained"
    # only adapted linear layers move: embeddings and norms are frozen and carry no adapter
    assert all(name.endswith("proj.weight") for name in changed), changed


@pytest.mark.parametrize("target, message", [("embed_tokens", "only linear layers"), ("lm_head", "tied")])
def test_adapters_that_cannot_be_merged_are_refused_before_training(micro_model_dir, target, message):
    with pytest.raises(ValueError, match=f"model.lora.target_modules: .*{message}"):
        apply_lora(load_model(ModelConfig(path=str(micro_model_dir))), LoraConfig(target_modules=[target]))
