"""The tiny GLM-4V: `rlcs init` builds it with its processor, and it loads, processes images and generates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from transformers import AutoModelForImageTextToText, Glm4ForCausalLM, Glm4vForConditionalGeneration

from rlcs.config import InitRecipe, ModelConfig, load_recipe
from rlcs.runtime import load_model, load_processor
from rlcs.stages import init as init_stage
from rlcs.vision import (
    FAMILIES,
    IMAGE,
    Glm4vImageTextProcessor,
    add_vision_tokens,
    build_processor,
    build_vision_model,
    vision_chat_template,
)

from .conftest import REPO

RECIPE = REPO / "recipes/tiny-vl/init.yaml"


@pytest.fixture(scope="module")
def vl_dir(suite_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-vl")
    corpus = suite_dir / "pretrain.jsonl"
    recipe = load_recipe(RECIPE, InitRecipe, [f"output_dir={out}", f"tokenizer.corpus=[{corpus}]"])
    return init_stage.run(recipe)


@pytest.fixture(scope="module")
def vl_model(vl_dir):
    return AutoModelForImageTextToText.from_pretrained(vl_dir).eval()


@pytest.fixture(scope="module")
def processor(vl_dir):
    return load_processor(ModelConfig(path=str(vl_dir)))


def image_chat(size: tuple[int, int], text: str = "What is 2 + 3?") -> list[dict]:
    """One user turn: an image of PIL ``size`` (width, height) with a gradient, then a question."""
    width, height = size
    image = Image.new("RGB", size)
    image.putdata([(255 * x // width, 255 * y // height, 128) for y in range(height) for x in range(width)])
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]


def encode(processor, conversations: list[list[dict]]):
    return processor.apply_chat_template(conversations, tokenize=True, return_dict=True, return_tensors="pt",
                                         add_generation_prompt=True, padding=True)


def test_tiny_vl_recipe_saves_a_standard_glm4v_directory(vl_dir, vl_model, processor):
    assert isinstance(vl_model, Glm4vForConditionalGeneration)
    params = sum(p.numel() for p in vl_model.parameters())
    assert 0.1e6 < params < 3e6, params
    assert sum(p.numel() for p in vl_model.model.visual.parameters()) > 0.05e6
    # The names stock transformers resolves: with torchvision, AutoProcessor loads this directory as Glm4vProcessor.
    saved = json.loads((vl_dir / "processor_config.json").read_text())
    assert saved["processor_class"] == "Glm4vProcessor"
    assert json.loads((vl_dir / "tokenizer_config.json").read_text())["processor_class"] == "Glm4vProcessor"
    assert saved["image_processor"]["image_processor_type"] == "Glm4vImageProcessor"
    assert saved["image_processor"]["size"] == {"shortest_edge": 12544, "longest_edge": 100352}
    # The vision tokens are single special tokens (dropped by skip_special_tokens) and the config points at them.
    tokenizer = processor.tokenizer
    for field, token in FAMILIES["glm4v"].config_token_fields.items():
        assert getattr(vl_model.config, field) == tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id
        token_id = tokenizer.convert_tokens_to_ids(token)
        assert tokenizer.decode([token_id]) == token and tokenizer.decode([token_id], skip_special_tokens=True) == ""
    assert vl_model.config.text_config.vocab_size == len(tokenizer)
    assert vl_model.generation_config.eos_token_id == tokenizer.eos_token_id


def test_processor_loads_without_torchvision_with_the_pil_image_processor(processor):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        assert type(processor) is Glm4vImageTextProcessor
    assert type(processor.image_processor).__name__ == "Glm4vImageProcessorPil"
    assert processor.image_processor.patch_size == 14 and processor.image_processor.merge_size == 2
    assert processor.chat_template == vision_chat_template(FAMILIES["glm4v"].image_part)


def test_auto_processor_loads_the_directory_where_torchvision_is_installed(vl_dir):
    pytest.importorskip("torchvision")
    from transformers import AutoProcessor, Glm4vProcessor

    auto = AutoProcessor.from_pretrained(vl_dir)
    assert isinstance(auto, Glm4vProcessor)
    assert encode(auto, [image_chat((200, 20))])["image_grid_thw"].tolist() == [[1, 2, 20]]


@pytest.mark.parametrize(("size", "grid"), [((200, 20), [1, 2, 20]), ((20, 200), [1, 20, 2]), ((64, 64), [1, 6, 6])],
                         ids=["wide", "tall", "small-square"])
def test_images_keep_their_aspect_ratio(processor, size, grid):
    """Native resolution: each side is rounded to 28 px (a merged 2x2 block of 14 px patches) and only
    scaled up to the minimum pixel count, so a 200x20 strip stays a strip rather than a square."""
    batch = encode(processor, [image_chat(size)])
    assert batch["image_grid_thw"].tolist() == [grid]
    patches = grid[0] * grid[1] * grid[2]
    assert tuple(batch["pixel_values"].shape) == (patches, 3 * 2 * 14 * 14)
    image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE)
    assert int((batch["input_ids"] == image_id).sum()) == patches // 4


def test_forward_and_generate_with_images_of_different_shapes(vl_model, processor):
    batch = encode(processor, [image_chat((200, 20)), image_chat((20, 200), "Count the stripes.")])
    assert batch["input_ids"].shape[0] == 2 and batch["image_grid_thw"].tolist() == [[1, 2, 20], [1, 20, 2]]
    with torch.no_grad():
        logits = vl_model(**batch).logits
    assert logits.shape == (*batch["input_ids"].shape, vl_model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()
    # The image changes the prediction: the vision tower's output reaches the decoder.
    other = encode(processor, [image_chat((20, 200)), image_chat((20, 200), "Count the stripes.")])
    with torch.no_grad():
        assert not torch.allclose(vl_model(**other).logits[0, -1], logits[0, -1])
    generated = vl_model.generate(**batch, max_new_tokens=6, do_sample=False)
    new = generated[:, batch["input_ids"].shape[1]:]
    assert new.shape[0] == 2 and 1 <= new.shape[1] <= 6
    assert int(new.max()) < len(processor.tokenizer)
    assert isinstance(processor.batch_decode(new, skip_special_tokens=True)[0], str)


def test_text_conversations_render_as_with_the_text_template(processor, micro_tokenizer):
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3?"},
                    {"role": "assistant", "content": "<think>2 + 3 = 5</think><answer>5</answer>"}]
    for messages, prompt in ((conversation, False), (conversation[:2], True)):
        text = processor.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        assert text == micro_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)


def test_video_parts_are_refused_by_name(processor):
    messages = [{"role": "user", "content": [{"type": "video", "video": "clip.mp4"}, {"type": "text", "text": "?"}]}]
    with pytest.raises(Exception, match="unsupported content part type: video"):
        processor.tokenizer.apply_chat_template(messages, tokenize=False)


def test_load_model_picks_the_auto_class_from_the_config(vl_dir, micro_model_dir):
    assert type(load_model(ModelConfig(path=str(vl_dir)))) is Glm4vForConditionalGeneration
    assert type(load_model(ModelConfig(path=str(micro_model_dir)))) is Glm4ForCausalLM


@pytest.mark.parametrize(("change", "message"), [
    ({"vision_config": {"out_hidden_size": 48}}, "out_hidden_size .48. must equal .*hidden_size .64."),
    ({"text_config": {"rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5,
                                          "mrope_section": [8, 12, 12]}}}, "mrope_section .* must sum to half"),
    ({"text_config": {"num_key_value_heads": 3}}, "multiple of num_key_value_heads"),
    # no section given: the model code's default, which does not fit a 32-dim head with half of it rotary
    ({"text_config": {"rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5}}},
     r"mrope_section \[8, 12, 12\] must sum to half"),
])
def test_shape_mismatches_fail_at_build_naming_the_key(processor, change, message):
    config = yaml.safe_load(RECIPE.read_text())["model"]["config"]
    for section, values in change.items():
        config[section].update(values)
    with pytest.raises(ValueError, match=message):
        build_vision_model("glm4v", config, processor.tokenizer, seed=0)


def test_a_qwen_config_without_an_mrope_section_is_refused_at_build(vl_dir):
    config = yaml.safe_load((REPO / "recipes/tiny-vl/init-qwen2.5-vl.yaml").read_text())["model"]["config"]
    del config["text_config"]["rope_parameters"]["mrope_section"]
    tokenizer = load_processor(ModelConfig(path=str(vl_dir))).tokenizer  # a fresh copy, given Qwen's tokens
    add_vision_tokens(tokenizer, "qwen2_5_vl")
    with pytest.raises(ValueError, match=r"mrope_section \[16, 24, 24\] must sum to half"):
        build_vision_model("qwen2_5_vl", config, tokenizer, seed=0)


def test_the_saved_directory_names_the_stock_video_processor(vl_dir):
    """Stock AutoProcessor reads the video processor's settings first, torchvision or not."""
    from transformers.video_processing_utils import BaseVideoProcessor

    settings, _ = BaseVideoProcessor.get_video_processor_dict(str(vl_dir))
    assert settings["video_processor_type"] == "Glm4vVideoProcessor" and settings["patch_size"] == 14


def test_image_processor_geometry_comes_from_the_vision_tower(vl_model, processor):
    with pytest.raises(ValueError, match="model.image_processor: patch_size come from model.config.vision_config"):
        build_processor(processor.tokenizer, vl_model.config.vision_config, {"patch_size": 16}, "glm4v")


def test_text_model_with_an_image_processor_is_refused(suite_dir, tmp_path):
    recipe = load_recipe(REPO / "recipes/tiny/init.yaml", InitRecipe, [
        f"output_dir={tmp_path}", f"tokenizer.corpus=[{suite_dir / 'pretrain_eval.jsonl'}]", "tokenizer.vocab_size=300",
        "model.image_processor={size: {shortest_edge: 3136, longest_edge: 50176}}"])
    with pytest.raises(ValueError, match="model.image_processor: only image-text models"):
        init_stage.run(recipe)
