"""`rlcs init`: train a tokenizer on a local corpus and build a fresh model from a config.

An image-text model type (glm4v, qwen2_5_vl) also gets its vision tokens and a processor (rlcs/vision.py).

Both are written with ``save_pretrained`` so every later stage loads them with
``from_pretrained``, exactly as it would load a real model id.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig, PreTrainedTokenizerFast

from rlcs import vision
from rlcs.config import InitRecipe, dump_recipe
from rlcs.data import load_texts

EOS, PAD = "<|endoftext|>", "<|pad|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
# The reasoning format's markers; kept out of the "special" set so that decoding
# with skip_special_tokens=True still shows the structure a verifier needs.
FORMAT_TOKENS = ["<think>", "</think>", "<answer>", "</answer>", "<|begin_of_box|>", "<|end_of_box|>"]

# GLM-style turns; rendering a prefix of the conversation with
# add_generation_prompt=True yields a token prefix of the full conversation,
# which is what SFT prompt masking relies on.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] }}"
    "{%- if message['role'] == 'assistant' -%}{{ '<|endoftext|>' }}{%- else -%}{{ '\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE where every digit is its own token (with the space before it, if any),
    so numbers stay legible to a tiny model and spaces cost no extra tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r" ?[0-9]| ?[^\s0-9]+|\s+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=ROLE_TOKENS,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
    )
    wrapped.add_tokens(FORMAT_TOKENS)
    return wrapped


def build_model(model_type: str, overrides: dict, tokenizer: PreTrainedTokenizerFast, seed: int):
    torch.manual_seed(seed)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        **overrides,
    )
    heads, kv_heads = getattr(config, "num_attention_heads", None), getattr(config, "num_key_value_heads", None)
    if heads and kv_heads and heads % kv_heads:
        # transformers accepts it and fails deep inside attention at the first forward pass
        raise ValueError(f"model.config: num_attention_heads ({heads}) must be a multiple of "
                         f"num_key_value_heads ({kv_heads})")
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    return model


def run(recipe: InitRecipe) -> Path:
    out = Path(recipe.output_dir) / "model"
    spec = recipe.model
    image_text = vision.is_image_text_model_type(spec.model_type)
    if spec.image_processor and not image_text:
        raise ValueError(f"model.image_processor: only image-text models take one; "
                         f"{spec.model_type!r} is a text model")
    if image_text:
        vision.family(spec.model_type)  # an unbuildable type fails before the tokenizer trains
    texts = [text for source in recipe.tokenizer.corpus for text in load_texts(source, recipe.tokenizer.text_field)]
    tokenizer = train_tokenizer(texts, recipe.tokenizer.vocab_size)
    if image_text:
        vision.add_vision_tokens(tokenizer, spec.model_type)
        model = vision.build_vision_model(spec.model_type, spec.config, tokenizer, recipe.seed)
        # The processor saves the tokenizer with it (and the chat template, image processor settings).
        saved = vision.build_processor(tokenizer, model.config.vision_config, spec.image_processor,
                                       spec.model_type)
    else:
        model = build_model(spec.model_type, spec.config, tokenizer, recipe.seed)
        saved = tokenizer
    model.save_pretrained(out)
    saved.save_pretrained(out)
    dump_recipe(recipe, Path(recipe.output_dir) / "recipe.yaml")
    print(f"built {type(model).__name__} with {_parameter_summary(model)} and a "
          f"{len(tokenizer)}-token tokenizer in {out}")
    return out


def _parameter_summary(model: torch.nn.Module) -> str:
    total = sum(p.numel() for p in model.parameters())
    summary = f"{total / 1e6:.2f}M parameters"
    # An image-text model: say how much of it is the vision tower.
    visual = getattr(getattr(model, "model", None), "visual", None)
    if visual is not None:
        summary += f" ({sum(p.numel() for p in visual.parameters()) / 1e6:.2f}M in the vision tower)"
    return summary
