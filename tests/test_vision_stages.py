"""The tiny GLM-4V through the real stage commands on image rows: SFT and RL in one process, and under the
2-process ZeRO-3 config with images on one process and text on the other (every forward then runs the
vision tower on both, or the parameter gathers would not match)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rlcs.config import InitRecipe, ModelConfig, SuiteRecipe, load_recipe, validate_recipe
from rlcs.metrics import read_metrics
from rlcs.runtime import load_model, load_processor
from rlcs.stages import data as data_stage
from rlcs.stages import init as init_stage
from rlcs.vision import FAMILIES, parameter_role

from .conftest import REPO, run_rlcs, zero3_launcher

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vl_suite(tmp_path_factory):
    """A small suite with a text domain and the four image domains, and the tiny VLM built on its corpus."""
    root = tmp_path_factory.mktemp("vl-suite")
    suite = validate_recipe({"output_dir": str(root / "data"), "seed": 3, "levels": [1, 2],
                             "domains": ["arithmetic", "shapes", "ocr", "grounding", "chart"],
                             "eval_per_level": 3, "rl_per_level": 4, "sft_per_level": 6, "pretrain_per_level": 20,
                             "pretrain_images_per_level": 2, "pretrain_drills": 20, "pretrain_lookups": 20},
                            SuiteRecipe)
    data_stage.run(suite)
    init = load_recipe(REPO / "recipes/tiny-vl/init.yaml", InitRecipe,
                       [f"output_dir={root / 'init'}", f"tokenizer.corpus=[{root / 'data/pretrain.jsonl'}]"])
    return root, init_stage.run(init)


def rows_of(source) -> list[dict]:
    """The rows of a suite file, image paths made absolute so the rows can be written anywhere."""
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    return [{**r, "images": [str(source.parent / p) for p in r["images"]]} if r.get("images") else r for r in rows]


def write_rows(rows: list[dict], target) -> None:
    target.write_text("".join(json.dumps(r) + "\n" for r in rows))


def two_rows(source, target) -> None:
    """One text row and one image row of ``source``: split over two processes, one gets each."""
    rows = rows_of(source)
    write_rows([next(r for r in rows if not r.get("images")), next(r for r in rows if r.get("images"))], target)


def two_steps_on_two_processes(stage: str, model, source, tmp_path, port: int, *overrides: str) -> None:
    """Two steps of a tiny-vl training stage under the 2-process ZeRO-3 config, one row of ``source`` per
    process (text on one, an image on the other), into ``tmp_path / stage``; both losses must be finite
    and both steps must log the image tokens' spread."""
    two_rows(source, tmp_path / f"{stage}.jsonl")
    run_rlcs([stage, "--config", f"recipes/tiny-vl/{stage}.yaml", f"output_dir={tmp_path / stage}",
              f"model.path={model}", f"data.train={tmp_path / f'{stage}.jsonl'}", "data.eval=null",
              "train.micro_batch_size=1", "train.max_steps=2", "train.log_every=1", "logging.wandb=false",
              *overrides], launcher=zero3_launcher(port))
    rows = read_metrics(tmp_path / stage)
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    # the image process's row in every step, reduced with the text process's none (its filler is not counted)
    spreads = [r["train/image_token_spread"] for r in rows if "train/image_token_spread" in r]
    assert len(spreads) == 2 and all(0.0 < v <= 1.0 for v in spreads)


def test_image_caption_pretraining_in_one_process_trains_tower_and_decoder(vl_suite, tmp_path):
    root, model = vl_suite
    data = root / "data"
    captions = [r for r in rows_of(data / "pretrain.jsonl") if r.get("images")]
    assert len(captions) == 2 * 4 * 2  # per image domain and level
    result = run_rlcs(["pretrain", "--config", "recipes/tiny-vl/pretrain.yaml", f"output_dir={tmp_path / 'pt'}",
                       f"model.path={model}", f"data.train={data / 'pretrain.jsonl'}",
                       f"data.eval={data / 'pretrain_eval.jsonl'}", "train.micro_batch_size=4", "train.max_steps=3",
                       "train.log_every=1", "train.eval_every=3", "train.eval_max_batches=2", "logging.wandb=false"])
    assert "has image-caption documents, which are not packed" in result.stdout
    rows = read_metrics(tmp_path / "pt")
    assert len([r for r in rows if "train/loss" in r]) == 3 and all(math.isfinite(r["eval/loss"]) for r in rows
                                                                      if "eval/loss" in r)
    start = load_model(ModelConfig(path=str(model)))
    tuned = dict(load_model(ModelConfig(path=str(tmp_path / "pt/model"))).named_parameters())
    changed = {parameter_role(n) for n, p in start.named_parameters() if not torch.equal(p, tuned[n])}
    assert {"vision", "decoder"} <= changed  # the captions' loss reaches the tower
    assert load_processor(ModelConfig(path=str(tmp_path / "pt/model"))).image_processor is not None


def test_captions_all_longer_than_seq_len_stop_pretraining_naming_the_file(vl_suite, tmp_path):
    root, model = vl_suite
    write_rows([r for r in rows_of(root / "data/pretrain.jsonl") if r.get("images")], tmp_path / "captions.jsonl")
    result = run_rlcs(["pretrain", "--config", "recipes/tiny-vl/pretrain.yaml", f"output_dir={tmp_path / 'pt'}",
                       f"model.path={model}", f"data.train={tmp_path / 'captions.jsonl'}", "data.eval=null",
                       "data.seq_len=16", "logging.wandb=false"], expect_failure=True)
    assert result.returncode != 0
    assert "captions.jsonl: no training rows left (16 longer than data.seq_len=16" in result.stdout + result.stderr


def test_sft_then_rl_on_image_rows_in_one_process(vl_suite, tmp_path):
    root, model = vl_suite
    data = root / "data"
    sft = run_rlcs(["sft", "--config", "recipes/tiny-vl/sft.yaml", f"output_dir={tmp_path / 'sft'}",
                    f"model.path={model}", f"data.train={data / 'sft.jsonl'}", f"data.eval={data / 'sft_eval.jsonl'}",
                    "train.micro_batch_size=4", "train.max_steps=4", "train.log_every=2", "train.eval_every=4",
                    "logging.wandb=false"])
    assert "image rows, which are not packed" in sft.stdout
    losses = [r["train/loss"] for r in read_metrics(tmp_path / "sft") if "train/loss" in r]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    config = ModelConfig(path=str(tmp_path / "sft/model"))
    assert type(load_model(config)).__name__ == "Glm4vForConditionalGeneration"
    assert load_processor(config).image_processor is not None  # saved with the model for the next stage

    run_rlcs(["rl", "--config", "recipes/tiny-vl/rl.yaml", f"output_dir={tmp_path / 'rl'}",
              f"model.path={tmp_path / 'sft/model'}", f"data.train={data / 'rl.jsonl'}",
              f"data.eval={data / 'eval.jsonl'}", "train.steps=2", "rl.batch_size=4", "train.micro_batch_size=8",
              "rollout.max_new_tokens=24", "rollout.answer_budget=8", "train.eval_max_new_tokens=24",
              "train.eval_max_examples=5", "train.eval_samples=1", "train.completions_every=1", "logging.wandb=false"])
    rows = read_metrics(tmp_path / "rl")
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 2]
    assert all(math.isfinite(r["train/grad_norm"]) for r in rows if "train/grad_norm" in r)
    picked = [json.loads(line) for line in (tmp_path / "rl/picks.jsonl").read_text().splitlines()]
    assert any(i.split("-")[0] in ("shapes", "ocr", "grounding", "chart") for step in picked for i in step["ids"])
    assert load_processor(ModelConfig(path=str(tmp_path / "rl/model"))).image_processor is not None


def test_zero3_two_processes_with_an_image_on_one_and_text_on_the_other(vl_suite, tmp_path):
    root, model = vl_suite
    data = root / "data"
    # pretraining: a text document on one process, an image-caption document on the other
    two_steps_on_two_processes("pretrain", model, data / "pretrain.jsonl", tmp_path, 29623)
    two_steps_on_two_processes("sft", model, data / "sft.jsonl", tmp_path, 29621,
                               "model.freeze_vision=true", "optim.lr_projector=1e-3")
    start, tuned = load_model(ModelConfig(path=str(model))), load_model(ModelConfig(path=str(tmp_path / "sft/model")))
    tuned_parameters = dict(tuned.named_parameters())
    changed = {parameter_role(n) for n, p in start.named_parameters() if not torch.equal(p, tuned_parameters[n])}
    assert changed == {"decoder", "projector"}  # freeze_vision under ZeRO-3: the gathered tower is unchanged

    two_rows(data / "rl.jsonl", tmp_path / "rl.jsonl")
    # three held-out items, two on one process and one on the other: an image, a text row, an image
    held_out = rows_of(data / "eval.jsonl")
    images = [r for r in held_out if r.get("images")]
    write_rows([images[0], next(r for r in held_out if not r.get("images")), images[1]], tmp_path / "eval.jsonl")
    run_rlcs(["rl", "--config", "recipes/tiny-vl/rl.yaml", f"output_dir={tmp_path / 'rl'}",
              f"model.path={tmp_path / 'sft/model'}", f"data.train={tmp_path / 'rl.jsonl'}",
              f"data.eval={tmp_path / 'eval.jsonl'}", "sampler.name=uniform", "train.steps=2", "rl.batch_size=2",
              "train.micro_batch_size=8", "rollout.max_new_tokens=24", "rollout.answer_budget=8",
              "train.eval_max_new_tokens=16", "train.eval_samples=1", "logging.wandb=false"],
             launcher=zero3_launcher(29622))
    rows = read_metrics(tmp_path / "rl")
    assert [r["eval/examples"] for r in rows if "eval/examples" in r] == [3, 3]
    assert len([r for r in rows if "train/grad_norm" in r]) == 2
    info = json.loads((tmp_path / "rl/run_info.json").read_text())
    assert info["num_processes"] == 2 and len(set(info["sampler_digest_per_rank"])) == 1


def test_an_image_row_for_a_text_model_stops_the_stage_naming_the_row(vl_suite, micro_model_dir, tmp_path):
    root, _ = vl_suite
    two_rows(root / "data/rl.jsonl", tmp_path / "rl.jsonl")
    result = run_rlcs(["rl", "--config", "recipes/tiny/rl.yaml", f"output_dir={tmp_path / 'rl'}",
                       f"model.path={micro_model_dir}", f"data.train={tmp_path / 'rl.jsonl'}", "data.eval=null",
                       "logging.wandb=false"], expect_failure=True)
    assert result.returncode != 0
    assert "rl.jsonl: row 2: 'images' is not supported by this recipe's model" in result.stdout + result.stderr


def test_the_image_reaches_the_answer_a_solid_colour_is_learnt(vl_suite, tmp_path):
    """A question only the image answers (the colour of a solid image, four colours, chance 25%): after
    150 SFT steps from the untrained VLM, held-out images are named right. Fails if pixels were dropped,
    misaligned with their rows, or never reached the decoder."""
    from PIL import Image

    from rlcs.evaluate import evaluate

    _, model = vl_suite
    colours = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (30, 160, 60), "yellow": (230, 200, 30)}
    sizes = [(112, 112), (168, 112), (112, 168), (224, 112)]
    (tmp_path / "images").mkdir()

    def rows(count: int, salt: str, seed: int) -> list[dict]:
        import random

        rng, out = random.Random(seed), []
        for i in range(count):
            colour = rng.choice(list(colours))
            path = tmp_path / "images" / f"{salt}{i}.png"
            Image.new("RGB", rng.choice(sizes), colours[colour]).save(path)
            out.append({"id": f"{salt}{i}", "domain": "colour", "prompt": "What colour is the image?",
                        "answer": colour, "images": [str(path)],
                        "response": f"<think>It is {colour}.</think>"
                                    f"<answer><|begin_of_box|>{colour}<|end_of_box|></answer>"})
        return out

    write_rows(rows(800, "t", 0), tmp_path / "sft.jsonl")
    held_out = rows(40, "e", 1)
    run_rlcs(["sft", "--config", "recipes/tiny-vl/sft.yaml", f"output_dir={tmp_path / 'sft'}", f"model.path={model}",
              f"data.train={tmp_path / 'sft.jsonl'}", "data.eval=null", "train.max_steps=150",
              "train.micro_batch_size=8", "optim.warmup_steps=5", "logging.wandb=false"])
    config = ModelConfig(path=str(tmp_path / "sft/model"))
    examples = [{k: v for k, v in r.items() if k != "response"} for r in held_out]
    metrics, _ = evaluate(load_model(config), load_processor(config).tokenizer, examples, 32, show_progress=False,
                          processor=load_processor(config))
    assert metrics["eval/exact"] >= 0.9, metrics["eval/exact"]


@pytest.fixture(scope="module")
def qwen_model(vl_suite):
    """A tiny Qwen2.5-VL built by `rlcs init` from recipes/tiny-vl/init-qwen2.5-vl.yaml on the suite's corpus."""
    root, _ = vl_suite
    init = load_recipe(REPO / "recipes/tiny-vl/init-qwen2.5-vl.yaml", InitRecipe,
                       [f"output_dir={root / 'qwen-init'}", f"tokenizer.corpus=[{root / 'data/pretrain.jsonl'}]"])
    return init_stage.run(init)


def test_a_tiny_qwen2_5_vl_runs_every_stage_on_image_rows(vl_suite, qwen_model, tmp_path):
    """The stage code is not GLM-only: Qwen2.5-VL (its own markers, processor and 3-D rotary positions) through
    caption pretraining, SFT and RL in one process, its processor saved with each stage's model."""
    root, _ = vl_suite
    data = root / "data"
    config = ModelConfig(path=str(qwen_model))
    assert type(load_model(config)).__name__ == "Qwen2_5_VLForConditionalGeneration"
    processor = load_processor(config)
    assert type(processor).__name__ == "Qwen2_5_VLImageTextProcessor"
    for field, token in FAMILIES["qwen2_5_vl"].config_token_fields.items():  # the markers' ids, in the config
        assert getattr(load_model(config).config, field) == processor.tokenizer.convert_tokens_to_ids(token)
    # the names stock transformers resolves (with torchvision, AutoProcessor loads it as Qwen2_5_VLProcessor)
    assert json.loads((qwen_model / "processor_config.json").read_text())["processor_class"] == "Qwen2_5_VLProcessor"
    assert json.loads((qwen_model / "tokenizer_config.json").read_text())["processor_class"] == "Qwen2_5_VLProcessor"
    from transformers.video_processing_utils import BaseVideoProcessor

    assert BaseVideoProcessor.get_video_processor_dict(str(qwen_model))[0]["video_processor_type"] == \
        "Qwen2VLVideoProcessor"
    write_rows([r for r in rows_of(data / "pretrain.jsonl") if r.get("images")], tmp_path / "captions.jsonl")
    run_rlcs(["pretrain", "--config", "recipes/tiny-vl/pretrain.yaml", f"output_dir={tmp_path / 'pt'}",
              f"model.path={qwen_model}", f"data.train={tmp_path / 'captions.jsonl'}", "data.eval=null",
              "train.micro_batch_size=4", "train.max_steps=2", "train.log_every=1", "logging.wandb=false"])
    run_rlcs(["sft", "--config", "recipes/tiny-vl/sft.yaml", f"output_dir={tmp_path / 'sft'}",
              f"model.path={tmp_path / 'pt/model'}", f"data.train={data / 'sft.jsonl'}", "data.eval=null",
              "train.micro_batch_size=4", "train.max_steps=2", "train.log_every=1", "logging.wandb=false"])
    for stage in ("pt", "sft"):
        losses = [r["train/loss"] for r in read_metrics(tmp_path / stage) if "train/loss" in r]
        assert len(losses) == 2 and all(math.isfinite(v) for v in losses), stage
    run_rlcs(["rl", "--config", "recipes/tiny-vl/rl.yaml", f"output_dir={tmp_path / 'rl'}",
              f"model.path={tmp_path / 'sft/model'}", f"data.train={data / 'rl.jsonl'}",
              f"data.eval={data / 'eval.jsonl'}", "sampler.name=uniform", "train.steps=2", "rl.batch_size=4",
              "train.micro_batch_size=8", "rollout.max_new_tokens=24", "rollout.answer_budget=8",
              "train.eval_max_new_tokens=16", "train.eval_max_examples=6", "train.eval_samples=1",
              "logging.wandb=false"])
    rows = read_metrics(tmp_path / "rl")
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 2]
    assert all(math.isfinite(r["train/grad_norm"]) for r in rows if "train/grad_norm" in r)
    picked = [json.loads(line) for line in (tmp_path / "rl/picks.jsonl").read_text().splitlines()]
    assert any(i.split("-")[0] in ("shapes", "ocr", "grounding", "chart") for step in picked for i in step["ids"])
    assert type(load_processor(ModelConfig(path=str(tmp_path / "rl/model")))).__name__ == "Qwen2_5_VLImageTextProcessor"


def test_a_tiny_qwen2_5_vl_under_zero3_with_an_image_on_one_process_and_text_on_the_other(
        vl_suite, qwen_model, tmp_path):
    root, _ = vl_suite
    two_steps_on_two_processes("sft", qwen_model, root / "data/sft.jsonl", tmp_path, 29624)
