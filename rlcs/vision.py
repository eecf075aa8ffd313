"""Image-text models: telling them apart, building a tiny one, loading its processor.

``rlcs init`` builds two families (``FAMILIES``): GLM-4V and Qwen2.5-VL. Each needs its own
marker tokens in the tokenizer, their ids in the model config, a chat template that writes
an image part with them, and its processor, which without torchvision is the stock one
minus its video processor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoProcessor,
    GenerationConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ProcessorMixin,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
from transformers.models.glm4v import Glm4vImageProcessorPil, Glm4vProcessor
from transformers.models.qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil
from transformers.utils import is_torchvision_available

from rlcs.packing import IGNORE

IMAGE_START, IMAGE, IMAGE_END = "<|begin_of_image|>", "<|image|>", "<|end_of_image|>"
VIDEO_START, VIDEO, VIDEO_END = "<|begin_of_video|>", "<|video|>", "<|end_of_video|>"


def vision_chat_template(image_part: str) -> str:
    """rlcs's text template (rlcs/stages/init.py) with list-of-parts content: an image part becomes
    ``image_part`` (the family's begin/placeholder/end), which the processor expands to one placeholder
    per merged patch. String content renders exactly as the text template does, so text SFT masking (a
    prompt rendered with add_generation_prompt is a token prefix of the conversation) still holds."""
    return (
        "{%- for message in messages -%}"
        "{{ '<|' + message['role'] + '|>\n' }}"
        "{%- if message['content'] is string -%}{{ message['content'] }}"
        "{%- else -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' -%}{{ '" + image_part + "' }}"
        "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
        "{%- else -%}{{ raise_exception('unsupported content part type: ' + part['type']) }}"
        "{%- endif -%}{%- endfor -%}{%- endif -%}"
        "{%- if message['role'] == 'assistant' -%}{{ '<|endoftext|>' }}{%- else -%}{{ '\n' }}{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
    )



def is_image_text_config(config: PretrainedConfig | type[PretrainedConfig]) -> bool:
    """True when this config (class) loads only as an image-text-to-text model: transformers maps it to
    one and not to a causal LM (GLM-4V), or a remote-code ``auto_map`` names only the image-text class.
    Configs with both mappings (llama4, qwen3_5, ...) keep loading as causal LMs, as they always have."""
    config_class = config if isinstance(config, type) else type(config)
    if config_class in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
        return config_class not in MODEL_FOR_CAUSAL_LM_MAPPING
    auto_map = getattr(config, "auto_map", None) or {}
    return "AutoModelForImageTextToText" in auto_map and "AutoModelForCausalLM" not in auto_map


def is_image_text_model_type(model_type: str) -> bool:
    if model_type not in CONFIG_MAPPING:
        return False
    return is_image_text_config(CONFIG_MAPPING[model_type])


class _WithoutVideo:
    """A stock processor class without its video processor (mixed in ahead of it).

    transformers 5 cannot construct or load these processors without torchvision: their video
    processors exist only with torchvision, and the type check of the ``video_processor`` argument
    fails even for ``None``. The subclass skips that argument and handles images and text only. It
    saves itself under the stock class's name (the image processor as the PIL one), so with
    torchvision installed ``AutoProcessor`` loads the same directory as the stock processor.
    """

    stock: type[ProcessorMixin]
    stock_video_processor: str  # the class name AutoProcessor needs to find the video processor's settings


    def _init_without_video(self, image_processor, tokenizer, chat_template, **kwargs) -> None:
        # the stock __init__ passes a video processor on; go to ProcessorMixin directly
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)
        self.video_processor = None

    def __call__(self, images=None, text=None, videos=None, **kwargs):
        if videos is not None:
            raise ValueError(f"this {self.stock.__name__} was loaded without torchvision and has no video "
                             "processor; install torchvision to process videos")
        return super().__call__(images=images, text=text, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["processor_class"] = self.stock.__name__
        # AutoProcessor reads the video processor's settings before anything else, torchvision or not: the
        # stock video processor, at its defaults with the model's patch geometry
        geometry = ("patch_size", "temporal_patch_size", "merge_size")
        output["video_processor"] = {"video_processor_type": self.stock_video_processor,
                                     **{key: getattr(self.image_processor, key) for key in geometry}}
        return output

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> list[str]:
        files = super().save_pretrained(save_directory, **kwargs)
        # ProcessorMixin also writes this class's name into the tokenizer config; name the stock class there too.
        path = Path(save_directory) / "tokenizer_config.json"
        tokenizer_config = json.loads(path.read_text())
        tokenizer_config["processor_class"] = self.stock.__name__
        path.write_text(json.dumps(tokenizer_config, indent=2, ensure_ascii=False) + "\n")
        return files


class Glm4vImageTextProcessor(_WithoutVideo, Glm4vProcessor):
    """``Glm4vProcessor`` without its video processor (images and text)."""

    stock = Glm4vProcessor
    stock_video_processor = "Glm4vVideoProcessor"

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self._init_without_video(image_processor, tokenizer, chat_template, **kwargs)
        # what Glm4vProcessor.__init__ sets
        self.image_token = getattr(tokenizer, "image_token", None) or IMAGE
        self.video_token = getattr(tokenizer, "video_token", None) or VIDEO
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        self.video_start_id = tokenizer.convert_tokens_to_ids(VIDEO_START)
        self.video_end_id = tokenizer.convert_tokens_to_ids(VIDEO_END)


class Qwen2_5_VLImageTextProcessor(_WithoutVideo, Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` without its video processor (images and text)."""

    stock = Qwen2_5_VLProcessor
    stock_video_processor = "Qwen2VLVideoProcessor"

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self._init_without_video(image_processor, tokenizer, chat_template, **kwargs)
        # what Qwen2_5_VLProcessor.__init__ sets
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)


@dataclass(frozen=True)
class VisionFamily:
    """What ``rlcs init`` needs to build one image-text model type from a config."""

    tokens: tuple[str, ...]  # marker tokens the processor looks up, added as special tokens
    config_token_fields: dict[str, str]  # model-config field -> the token whose id it holds
    image_part: str  # what the chat template writes for an image part
    processor_class: type[ProcessorMixin]  # without torchvision
    image_processor_class: type
    default_mrope_section: tuple[int, ...]  # what the model code applies when the config gives none


FAMILIES: dict[str, VisionFamily] = {
    # Glm4vProcessor looks all six markers up; the video ones are needed even for images because it tells
    # image placeholders from video frames by the video markers around them.
    "glm4v": VisionFamily(
        tokens=(IMAGE_START, IMAGE_END, IMAGE, VIDEO_START, VIDEO_END, VIDEO),
        config_token_fields={"image_start_token_id": IMAGE_START, "image_end_token_id": IMAGE_END,
                             "image_token_id": IMAGE, "video_start_token_id": VIDEO_START,
                             "video_end_token_id": VIDEO_END, "video_token_id": VIDEO},
        image_part=IMAGE_START + IMAGE + IMAGE_END,
        processor_class=Glm4vImageTextProcessor, image_processor_class=Glm4vImageProcessorPil,
        default_mrope_section=(8, 12, 12)),
    "qwen2_5_vl": VisionFamily(
        tokens=("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"),
        config_token_fields={"vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>",
                             "image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>"},
        image_part="<|vision_start|><|image_pad|><|vision_end|>",
        processor_class=Qwen2_5_VLImageTextProcessor, image_processor_class=Qwen2VLImageProcessorPil,
        default_mrope_section=(16, 24, 24)),
}


def family(model_type: str) -> VisionFamily:
    if model_type not in FAMILIES:
        raise ValueError(f"model.model_type: rlcs init builds the image-text model types {list(FAMILIES)}, "
                         f"got {model_type!r}")
    return FAMILIES[model_type]


def add_vision_tokens(tokenizer: PreTrainedTokenizerBase, model_type: str) -> None:
    """Add the family's image/video markers as special tokens (decoding with skip_special_tokens drops
    them, as it drops role tokens) and switch to the template that renders image parts."""
    spec = family(model_type)
    tokenizer.add_tokens(list(spec.tokens), special_tokens=True)
    tokenizer.chat_template = vision_chat_template(spec.image_part)


def build_processor(tokenizer: PreTrainedTokenizerBase, vision_config: PretrainedConfig,
                    image_processor_kwargs: dict[str, Any], model_type: str) -> ProcessorMixin:
    """The PIL image processor, its patch geometry taken from the vision tower so the two cannot disagree."""
    spec = family(model_type)
    geometry = {
        "patch_size": vision_config.patch_size,
        "temporal_patch_size": vision_config.temporal_patch_size,
        "merge_size": vision_config.spatial_merge_size,
    }
    clash = sorted(set(geometry) & set(image_processor_kwargs))
    if clash:
        raise ValueError(f"model.image_processor: {', '.join(clash)} come from model.config.vision_config "
                         "(patch_size, temporal_patch_size, spatial_merge_size); set them there")
    image_processor = spec.image_processor_class(**geometry, **image_processor_kwargs)
    return spec.processor_class(image_processor=image_processor, tokenizer=tokenizer,
                                chat_template=vision_chat_template(spec.image_part))


def build_vision_model(model_type: str, overrides: dict[str, Any], tokenizer: PreTrainedTokenizerBase,
                       seed: int) -> PreTrainedModel:
    """A freshly initialised image-text model; ``tokenizer`` must already hold the family's tokens."""
    spec = family(model_type)
    overrides = dict(overrides)
    text = dict(overrides.pop("text_config", {}))
    vision = dict(overrides.pop("vision_config", {}))
    text.update(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.bos_token_id)  # not the family's default, an id outside this vocabulary
    token_ids = {field: tokenizer.convert_tokens_to_ids(token) for field, token in spec.config_token_fields.items()}
    torch.manual_seed(seed)
    config = AutoConfig.for_model(model_type, text_config=text, vision_config=vision, **token_ids, **overrides)
    _check_shapes(config, spec)
    model = AutoModelForImageTextToText.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    return model


def _check_shapes(config: PretrainedConfig, spec: VisionFamily) -> None:
    """Mismatches transformers accepts at build time and fails on, deep inside, at the first forward pass."""
    text, vision = config.text_config, config.vision_config
    if text.num_attention_heads % text.num_key_value_heads:
        raise ValueError(f"model.config.text_config: num_attention_heads ({text.num_attention_heads}) must be a "
                         f"multiple of num_key_value_heads ({text.num_key_value_heads})")
    if vision.out_hidden_size != text.hidden_size:
        raise ValueError(f"model.config.vision_config.out_hidden_size ({vision.out_hidden_size}) must equal "
                         f"model.config.text_config.hidden_size ({text.hidden_size}): the vision tower's "
                         "outputs replace token embeddings")
    rope = text.rope_parameters or {}
    head_dim = text.hidden_size // text.num_attention_heads
    rotary = int(head_dim * rope.get("partial_rotary_factor", 1.0))
    section = list(rope.get("mrope_section") or spec.default_mrope_section)
    if 2 * sum(section) != rotary:
        raise ValueError(f"model.config.text_config.rope_parameters.mrope_section {section} must sum to half the "
                         f"rotary dimension ({rotary} = head_dim {head_dim} x partial_rotary_factor "
                         f"{rope.get('partial_rotary_factor', 1.0)})")


def load_image_text_processor(source: str, trust_remote_code: bool = False) -> ProcessorMixin:
    """``AutoProcessor.from_pretrained(source)``, except where that cannot work: a GLM-4V or Qwen2.5-VL
    processor without torchvision is loaded as the family's processor without video (images and text)."""
    config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    stock = PROCESSOR_MAPPING.get(type(config), None)
    without_video = {spec.processor_class.stock: spec.processor_class for spec in FAMILIES.values()}
    if not is_torchvision_available() and stock in without_video:
        return without_video[stock].from_pretrained(source)
    return AutoProcessor.from_pretrained(source, trust_remote_code=trust_remote_code)


def vision_token_ids(processor: ProcessorMixin) -> list[int]:
    """Ids of the processor's image and video markers (placeholders, begin/end): a model must never
    generate them, since a placeholder with no image behind it breaks every later forward pass over the
    completion (features and placeholders no longer match)."""
    tokenizer = processor.tokenizer
    ids = {getattr(processor, name, None) for name in ("image_token_id", "video_token_id")}
    for token_id, token in tokenizer.added_tokens_decoder.items():
        if token.special and any(word in token.content.lower() for word in ("image", "video", "vision")):
            ids.add(token_id)
    return sorted(i for i in ids if isinstance(i, int) and i != tokenizer.unk_token_id)


def load_images(paths: Sequence[str]) -> list[Image.Image]:
    """RGB images from paths the data loader has already checked (rlcs/data.py)."""
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return images


def pixel_inputs(processor: ProcessorMixin) -> Callable[[Sequence[str]], dict[str, torch.Tensor]]:
    """Loads a training row's image files and runs the image processor on them, at batch time: rows keep
    their image paths, not their pixels (a real image dataset's pixel values do not fit in memory)."""

    def load(paths: Sequence[str]) -> dict[str, torch.Tensor]:
        output = processor.image_processor(images=load_images(paths), return_tensors="pt")
        return {key: output[key] for key in ("pixel_values", "image_grid_thw")}

    return load


def split_processor_output(output) -> tuple[list[int], dict[str, torch.Tensor]]:
    """One processed sequence: its token ids, and everything else the processor returned, per-token
    tensors without their batch dimension (per-image ones, such as ``pixel_values`` and
    ``image_grid_thw``, as they are)."""
    ids = output["input_ids"]
    vision = {key: (value[0] if value.ndim == 2 and value.shape == ids.shape else value)
              for key, value in output.items() if key not in ("input_ids", "attention_mask")}
    return ids[0].tolist(), vision


def image_filler(processor: ProcessorMixin) -> dict[str, Any]:
    """A training row holding one small blank image and no label, added to a batch of an image-text
    model that has no image of its own. Every process then runs the vision tower in every forward and
    backward pass: under ZeRO-3 a process that skipped it would leave the others waiting in its
    parameter gathers (a collective mismatch), and DDP would find unused parameters. The row is its own
    sequence, so the other rows' outputs do not change; its labels are ignored."""
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}], tokenize=False)
    ids, vision = split_processor_output(processor(text=[text], images=[Image.new("RGB", (28, 28))],
                                                   return_tensors="pt", add_special_tokens=False))
    return {"input_ids": ids, "labels": [IGNORE] * len(ids), **vision}


# Where an image-text model keeps its vision tower, and the parts of it that project into the decoder.
# GLM-4V: model.visual.{patch_embed, blocks, ...} is the ViT, model.visual.{downsample, merger} the projector;
# Qwen2.5-VL: model.visual.merger; LLaVA-style models: a top-level multi_modal_projector.
VISION_PREFIXES = ("visual", "vision_tower", "vision_model")
PROJECTOR_PARTS = ("merger", "downsample", "multi_modal_projector", "mm_projector")


def parameter_role(name: str) -> str:
    """``vision``, ``projector`` or ``decoder`` for a parameter (or module) name of an image-text model
    (everything of a text model is ``decoder``)."""
    parts = name.split(".")
    if any(part in ("multi_modal_projector", "mm_projector") for part in parts):
        return "projector"
    for i, part in enumerate(parts):
        if part in VISION_PREFIXES:
            return "projector" if i + 1 < len(parts) and parts[i + 1] in PROJECTOR_PARTS else "vision"
    return "decoder"


def freeze_vision_tower(model: torch.nn.Module) -> None:
    """Stop gradients to the vision tower (not the projector). A model with no vision tower is an error:
    the recipe asked for something this model does not have."""
    tower = [parameter for name, parameter in model.named_parameters() if parameter_role(name) == "vision"]
    if not tower:
        raise ValueError("model.freeze_vision: this model has no vision tower (no parameter under "
                         f"{' / '.join(VISION_PREFIXES)})")
    for parameter in tower:
        parameter.requires_grad_(False)
