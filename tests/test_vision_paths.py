"""Image rows through the shared paths: SFT tokenization and collation, the generation engine, and the
policy's log-probabilities, with a 20:1 and a 1:20 image in the same batch."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from rlcs.chat import (
    example_messages,
    example_prompt,
    example_request,
    tokenize_document,
    tokenize_image_conversation,
    tokenize_image_document,
)
from rlcs.engine import HFEngine, Prompt, SamplingParams, greedy
from rlcs.packing import IGNORE, collate, pack_sequences, padded_rows
from rlcs.rl.policy import build_batch, token_logprobs
from rlcs.vision import pixel_inputs

from .test_plan import saved_bytes
from .test_vision import processor, vl_dir, vl_model  # noqa: F401  (module fixtures)

WIDE, TALL = (560, 28), (28, 560)


def stripes(size: tuple[int, int], seed: int = 0) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size)
    image.putdata([((x * 7 + seed * 40) % 256, (y * 5) % 256, 90) for y in range(height) for x in range(width)])
    return image


def conversation(text: str, answer: str) -> list[dict]:
    messages = example_messages({"prompt": text, "images": ["unused-path"]})
    return messages + [{"role": "assistant", "content": f"<think>look</think><answer>{answer}</answer>"}]


def test_image_conversations_mask_the_prompt_and_collate_wide_and_tall_images(processor):  # noqa: F811
    wide = tokenize_image_conversation(processor, conversation("What is shown?", "12"), [stripes(WIDE)])
    tall = tokenize_image_conversation(processor, conversation("Read it.", "ab"), [stripes(TALL)])
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image|>")
    for sequence, grid in ((wide, [1, 2, 40]), (tall, [1, 40, 2])):
        assert sequence.vision["image_grid_thw"].tolist() == [grid]
        assert sequence.input_ids.count(image_id) == 20  # 80 patches of 14 px merged 2x2
        first_label = next(i for i, label in enumerate(sequence.labels) if label != IGNORE)
        assert image_id not in sequence.input_ids[first_label:]  # image tokens are prompt, never trained
        response = processor.tokenizer.decode(sequence.input_ids[first_label:])
        assert response.startswith("<think>look</think>")
    rows, stats = padded_rows([wide, tall], seq_len=512)
    assert stats.sequences == 2
    batch = collate(rows, pad_id=processor.tokenizer.pad_token_id)
    assert batch["pixel_values"].shape[0] == 160  # both images' patches, in row order
    assert batch["image_grid_thw"].tolist() == [[1, 2, 40], [1, 40, 2]]
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    for key, value in batch.items():
        if key not in ("pixel_values", "image_grid_thw"):
            assert value.shape == batch["input_ids"].shape, key
    with pytest.raises(ValueError, match="cannot be packed"):
        pack_sequences([wide, tall], 512, processor.tokenizer.pad_token_id)


def test_a_caption_document_trains_its_text_given_the_image_and_batches_with_text_documents(processor):  # noqa: F811
    caption = tokenize_image_document(processor, "A red circle at [10, 20, 30, 40].", [stripes(WIDE)])
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image|>")
    assert caption.input_ids.count(image_id) == 20 and caption.vision["image_grid_thw"].tolist() == [[1, 2, 40]]
    trained = [label for label in caption.labels if label != IGNORE]
    first = caption.labels.index(trained[0])
    assert image_id not in caption.input_ids[first:] and all(label == IGNORE for label in caption.labels[:first])
    assert processor.tokenizer.decode(trained).startswith("A red circle at [10, 20, 30, 40].")
    text = tokenize_document(processor.tokenizer, "Facts:\n2 + 3 = 5")
    batch = collate(padded_rows([text, caption], seq_len=512)[0], pad_id=processor.tokenizer.pad_token_id)
    assert batch["image_grid_thw"].tolist() == [[1, 2, 40]] and batch["input_ids"].shape[0] == 2


def test_rows_from_image_files_keep_paths_not_pixels_and_collate_loads_them(processor, tmp_path):  # noqa: F811
    """A dataset's pixels are not held in memory: rows keep their files, loaded again for each batch, and the
    batch equals the one built from the images in memory."""
    paths = []
    for name, size in (("wide", WIDE), ("tall", TALL)):
        stripes(size).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    lazy = [tokenize_image_conversation(processor, conversation("What is shown?", "12"), [path]) for path in paths]
    eager = [tokenize_image_conversation(processor, conversation("What is shown?", "12"), [stripes(size)])
             for size in (WIDE, TALL)]
    assert all("pixel_values" not in s.vision and s.image_paths for s in lazy)
    pad = processor.tokenizer.pad_token_id
    from_files = collate(padded_rows(lazy, 512)[0], pad, load_pixels=pixel_inputs(processor))
    in_memory = collate(padded_rows(eager, 512)[0], pad)
    assert from_files.keys() == in_memory.keys()
    for key in in_memory:
        assert torch.equal(from_files[key], in_memory[key]), key
    with pytest.raises(ValueError, match="collate needs load_pixels"):
        collate(padded_rows(lazy, 512)[0], pad)
    stripes((56, 56)).save(paths[0])  # the file changed after tokenization: its grid no longer matches
    with pytest.raises(ValueError, match="no longer give the patch grid"):
        collate(padded_rows(lazy, 512)[0], pad, load_pixels=pixel_inputs(processor))
    with pytest.raises(ValueError, match="cannot be packed"):
        pack_sequences(lazy, 512, pad)


def test_sft_loss_on_an_image_batch_is_finite_and_depends_on_the_image(vl_model, processor):  # noqa: F811
    sequences = [tokenize_image_conversation(processor, conversation("What is shown?", "12"), [stripes(size)])
                 for size in (WIDE, TALL)]
    batch = collate(padded_rows(sequences, 512)[0], processor.tokenizer.pad_token_id)
    with torch.no_grad():
        loss = vl_model(**batch).loss
        other = collate(padded_rows([tokenize_image_conversation(
            processor, conversation("What is shown?", "12"), [stripes(size, seed=3)]) for size in (WIDE, TALL)],
            512)[0], processor.tokenizer.pad_token_id)
        other_loss = vl_model(**other).loss
    assert torch.isfinite(loss) and float(loss) != float(other_loss)


def test_engine_generates_for_image_prompts_and_the_policy_scores_them(vl_model, processor):  # noqa: F811
    engine = HFEngine(vl_model, processor.tokenizer, processor=processor)
    prompts = [Prompt(example_prompt(processor.tokenizer, {"prompt": "What is shown?", "images": ["x"]}),
                      (stripes(size),)) for size in (WIDE, TALL)]
    prompts.append(example_request(processor.tokenizer, {"prompt": "What is 2 + 3?"}))  # a text row among them
    torch.manual_seed(0)
    params = SamplingParams(max_new_tokens=12, answer_budget=4, temperature=1.0)
    completions = engine.generate(prompts, 2, params)
    assert len(completions) == 6
    assert [c.vision is not None for c in completions] == [True] * 4 + [False] * 2
    assert all(1 <= len(c.token_ids) <= 12 + len(engine.force_ids) for c in completions)  # forced answers
    # Greedy decoding of image prompts is deterministic.
    first = engine.generate(prompts[:2], 1, greedy(8))
    again = engine.generate(prompts[:2], 1, greedy(8))
    assert [c.token_ids for c in first] == [c.token_ids for c in again]
    # The policy's log-probabilities of the sampled tokens, with the image tensors in the forward pass:
    # finite, and equal to those of each row scored alone (batching wide and tall images mixes nothing up).
    batch = build_batch(completions, torch.zeros(len(completions)), processor.tokenizer.pad_token_id,
                        torch.device("cpu"))
    with torch.no_grad():
        together, _ = token_logprobs(vl_model, batch)
        for i in range(len(completions)):
            alone, _ = token_logprobs(vl_model, batch.rows(torch.tensor([i])))
            width = int(batch.attention_mask[i].sum())
            torch.testing.assert_close(together[i, :width - 1], alone[0, :width - 1], atol=1e-4, rtol=1e-4)
    mask = batch.loss_mask.bool()
    assert torch.isfinite(together[mask]).all() and (together[mask] < 0).any()


def test_training_scores_image_rows_as_generation_sampled_them(vl_model, processor):  # noqa: F811
    """The training forward (right-padded rows, rlcs.rl.policy) gives each sampled token of an image prompt
    the log-probability the engine's generate (left-padded rows) sampled it with: at the first update the
    importance ratio is exactly 1, for wide, tall and square images beside a text row. The model's weights are
    redrawn large, so positions and pixels visibly move the logits."""
    import copy

    model = copy.deepcopy(vl_model)
    torch.manual_seed(5)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.ndim >= 2:
                weight.normal_(0, 0.15)
    captured = []
    generate = model.generate

    def generate_keeping_logits(**kwargs):
        output = generate(**kwargs, output_logits=True, return_dict_in_generate=True)
        captured.append(torch.stack(output.logits, dim=1))  # [rows, new tokens, vocab], before any processor
        return output.sequences

    model.generate = generate_keeping_logits
    tokenizer = processor.tokenizer
    engine = HFEngine(model, tokenizer, processor=processor)
    prompts = [Prompt(example_prompt(tokenizer, {"prompt": "What is shown?" + " Look." * k, "images": ["x"]}),
                      (stripes(size, seed=k),)) for k, size in enumerate((WIDE, TALL, (56, 56)))]
    prompts.append(example_request(tokenizer, {"prompt": "What is 2 + 3?"}))
    torch.manual_seed(0)
    completions = engine.generate(prompts, 1, SamplingParams(max_new_tokens=12, force_answer=False, temperature=1.0))
    assert len(captured) == 1 and sum(c.vision is not None for c in completions) == 3
    order = sorted(range(len(completions)), key=lambda i: len(completions[i].prompt_ids))  # the engine's row order
    logits = captured[0][torch.tensor(order).argsort()]
    batch = build_batch(completions, torch.zeros(len(completions)), tokenizer.pad_token_id, torch.device("cpu"))
    with torch.no_grad():
        trained, _ = token_logprobs(model, batch)
    for row, completion in enumerate(completions):
        tokens = torch.tensor(completion.token_ids)
        sampled = torch.log_softmax(logits[row, :len(tokens)].float(), -1).gather(-1, tokens[:, None]).squeeze(-1)
        start = len(completion.prompt_ids) - 1
        torch.testing.assert_close(trained[row, start:start + len(tokens)], sampled, atol=1e-4, rtol=1e-4)
        assert sampled.std() > 0.3  # the logits are not flat: a misplaced position or image would show


def test_an_image_prompt_without_a_processor_is_an_error(vl_model, processor):  # noqa: F811
    engine = HFEngine(vl_model, processor.tokenizer)
    with pytest.raises(ValueError, match="needs the model's processor"):
        engine.generate([Prompt("<|user|>\nhi", (stripes(WIDE),))], 1, greedy(4))


def test_image_rows_load_with_checked_paths_and_bad_files_name_row_and_file(tmp_path):
    from rlcs.data import DataError, load_examples, load_sft_conversations

    (tmp_path / "images").mkdir()
    stripes(WIDE).save(tmp_path / "images" / "wide.png")
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    rl = tmp_path / "rl.jsonl"
    rl.write_text('{"domain": "ocr", "prompt": "Read it.", "answer": "ab", "images": ["images/wide.png"]}\n'
                  '{"domain": "d", "prompt": "text only", "answer": 1}\n')
    examples = load_examples(str(rl), images=True)
    assert examples[0]["images"] == [str((tmp_path / "images" / "wide.png").resolve())]  # relative to the file
    assert "images" not in examples[1]
    request = example_request(processor_like_tokenizer(), examples[0])
    assert isinstance(request, Prompt) and request.images[0].size == WIDE
    rl.write_text('{"domain": "d", "prompt": "p", "answer": 1}\n'
                  '{"domain": "ocr", "prompt": "Read it.", "answer": "ab", "images": ["images/missing.png"]}\n')
    with pytest.raises(DataError, match=r"rl.jsonl: row 2: image file not found: images/missing.png"):
        load_examples(str(rl), images=True)
    sft = tmp_path / "sft.jsonl"
    sft.write_text('{"prompt": "p", "response": "r", "images": ["images/broken.png"]}\n')
    with pytest.raises(DataError, match=r"sft.jsonl: row 1: image file images/broken.png cannot be read"):
        load_sft_conversations(str(sft), images=True)
    # chat-template style: image parts inside messages carry the files
    parts = {"messages": [{"role": "user", "content": [{"type": "image", "image": "images/wide.png"},
                                                       {"type": "text", "text": "Read it."}]},
                          {"role": "assistant", "content": "<think>a</think><answer>b</answer>"}]}
    sft.write_text(json.dumps(parts) + "\n")
    conversation = load_sft_conversations(str(sft), images=True)[0]
    assert conversation.images == [str((tmp_path / "images" / "wide.png").resolve())]
    assert conversation.messages[0]["content"][0] == {"type": "image"}
    with pytest.raises(DataError, match=r"row 1: 'messages \(image parts\)' is not supported by this recipe's model"):
        load_sft_conversations(str(sft))
    both = {"images": ["images/wide.png"], **parts}
    sft.write_text(json.dumps(both) + "\n")
    with pytest.raises(DataError, match="a row with 'messages' gives its images as image parts"):
        load_sft_conversations(str(sft), images=True)
    rl.write_text('{"domain": "d", "prompt": "p", "answer": 1, "image": "images/wide.png"}\n')
    with pytest.raises(DataError, match=r"row 1: 'image' is not read by rlcs"):  # never silently left out
        load_examples(str(rl), images=True)
    text_parts = {"domain": "d", "answer": 1,
                  "messages": [{"role": "user", "content": [{"type": "text", "text": "p"}]}]}
    rl.write_text(json.dumps(text_parts) + "\n")
    with pytest.raises(DataError, match="content as a list of parts needs an image-text model"):
        load_examples(str(rl))
    # one question about two images is two items
    rl.write_text('{"domain": "d", "prompt": "How many?", "answer": 1, "images": ["images/wide.png"]}\n'
                  '{"domain": "d", "prompt": "How many?", "answer": 2, "images": ["images/tall.png"]}\n')
    stripes(TALL).save(tmp_path / "images" / "tall.png")
    first, second = load_examples(str(rl), images=True)
    assert first["id"] != second["id"]


def processor_like_tokenizer():
    """A tokenizer whose chat template renders image parts: the tiny VLM's is built per test module, so
    for a pure data test any template that accepts list content does."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")))
    tokenizer.chat_template = ("{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}"
                               "{% for p in m.content %}{{ '<image>' if p.type == 'image' else p.text }}{% endfor %}"
                               "{% endif %}{% endfor %}")
    return tokenizer


def test_freeze_vision_keeps_the_tower_bit_identical_while_projector_and_decoder_train(vl_dir, processor):  # noqa: F811
    from rlcs.config import ModelConfig, OptimConfig
    from rlcs.optim import build_optimizer
    from rlcs.runtime import load_trainable_model
    from rlcs.vision import parameter_role

    model = load_trainable_model(ModelConfig(path=str(vl_dir), freeze_vision=True))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = build_optimizer(model, OptimConfig(lr=1e-2, lr_projector=5e-3))
    assert {g["role"]: g["lr"] for g in optimizer.param_groups} == {"decoder": 1e-2, "projector": 5e-3}
    sequences = [tokenize_image_conversation(processor, conversation("What is shown?", "12"), [stripes(size)])
                 for size in (WIDE, TALL)]
    batch = collate(padded_rows(sequences, 512)[0], processor.tokenizer.pad_token_id)
    for _ in range(3):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = {parameter_role(n) for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"decoder", "projector"}
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if parameter_role(n) == "vision")
    assert sum(p.numel() for n, p in model.named_parameters() if parameter_role(n) == "vision") > 0


def test_vision_options_on_a_text_model_are_errors(micro_model_dir):
    from rlcs.config import ModelConfig, OptimConfig
    from rlcs.optim import build_optimizer
    from rlcs.runtime import load_model, load_trainable_model

    with pytest.raises(ValueError, match="freeze_vision: this model has no vision tower"):
        load_trainable_model(ModelConfig(path=str(micro_model_dir), freeze_vision=True))
    with pytest.raises(ValueError, match="optim.lr_vision: this model has no vision parameters"):
        build_optimizer(load_model(ModelConfig(path=str(micro_model_dir))), OptimConfig(lr_vision=1e-5))


def test_lora_with_the_tower_frozen_adapts_no_vision_layer_and_merges_exactly(vl_dir, processor):  # noqa: F811
    pytest.importorskip("peft")
    from rlcs.config import LoraConfig, ModelConfig
    from rlcs.lora import merged_parameters
    from rlcs.runtime import load_model, load_trainable_model
    from rlcs.vision import parameter_role

    model = load_trainable_model(ModelConfig(path=str(vl_dir), freeze_vision=True, lora=LoraConfig(r=4)))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)
    assert {parameter_role(n) for n in trainable} == {"decoder", "projector"}
    with torch.no_grad():  # give the adapters a non-zero update, as training would
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    sequences = [tokenize_image_conversation(processor, conversation("Read it.", "ab"), [stripes(TALL)])]
    batch = collate(padded_rows(sequences, 512)[0], processor.tokenizer.pad_token_id)
    batch.pop("labels")
    merged = load_model(ModelConfig(path=str(vl_dir)))
    missing, unexpected = merged.load_state_dict(dict(merged_parameters(model, None)), strict=False)
    assert missing == ["lm_head.weight"] and not unexpected  # the head is tied to the embeddings
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, model(**batch).logits, atol=1e-5, rtol=1e-4)


def test_plan_reads_an_image_text_model_with_every_tower_counted(vl_dir):  # noqa: F811
    from transformers import AutoModelForImageTextToText

    from rlcs.plan import read_architecture

    arch = read_architecture(str(vl_dir))
    model = AutoModelForImageTextToText.from_pretrained(vl_dir)
    assert arch.parameters == sum({id(p): p.numel() for p in model.parameters()}.values())
    text = model.config.text_config
    assert (arch.hidden, arch.layers, arch.vocab) == (text.hidden_size, text.num_hidden_layers, text.vocab_size)


def test_lora_with_checkpointing_runs_a_frozen_qwen_tower_without_autograd(tmp_path):
    """Qwen2.5-VL (built tiny from its config): with gradient checkpointing, peft makes every sub-model's
    input embeddings require grad, the vision tower's patch embedding included; with freeze_vision the
    tower must not record a graph, while the decoder's embeddings still do (the adapters need it)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from rlcs.config import LoraConfig, ModelConfig
    from rlcs.runtime import load_trainable_model

    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": 300, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "fullatt_block_indexes": [1], "window_size": 56},
        image_token_id=299, video_token_id=298, vision_start_token_id=297)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(tmp_path)
    for freeze in (True, False):
        model = load_trainable_model(ModelConfig(path=str(tmp_path), gradient_checkpointing=True, freeze_vision=freeze,
                                                 lora=LoraConfig(r=4, alpha=8))).train()
        base = model.get_base_model()
        patches = base.model.visual.patch_embed(torch.randn(16, 3 * 2 * 14 * 14))
        assert patches.requires_grad is (not freeze)  # adapters in the tower need the graph
        assert base.get_input_embeddings()(torch.tensor([[1, 2]])).requires_grad


def test_plan_counts_what_the_training_code_trains(vl_dir):  # noqa: F811
    """freeze_vision and LoRA are applied by the stages' own functions on the meta model: the plan's
    trained count is what load_trainable_model leaves with requires_grad, tower flag included."""
    from rlcs.config import LoraConfig, ModelConfig
    from rlcs.plan import read_architecture
    from rlcs.runtime import load_trainable_model

    lora = LoraConfig(r=4, alpha=8)
    for freeze, adapters in ((True, None), (False, lora), (True, lora)):
        arch = read_architecture(str(vl_dir), freeze_vision=freeze, lora=adapters)
        model = load_trainable_model(ModelConfig(path=str(vl_dir), freeze_vision=freeze, lora=adapters))
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert arch.trained == trained < arch.parameters == sum(p.numel() for p in model.parameters())
        assert arch.vision_trained is (not freeze)
    assert read_architecture(str(vl_dir)).trained_parameters == read_architecture(str(vl_dir)).parameters


def test_plan_vision_activations_match_what_autograd_keeps(vl_dir):  # noqa: F811
    from transformers import AutoModelForImageTextToText

    from rlcs.config import ModelConfig
    from rlcs.plan import layer_activation_bytes, read_architecture, vision_activation_bytes
    from rlcs.runtime import load_processor

    arch = read_architecture(str(vl_dir))
    model = AutoModelForImageTextToText.from_pretrained(vl_dir).train()
    wide = Image.new("RGB", (224, 112))
    wide.putdata([(x, y, (x * y) % 255) for y in range(112) for x in range(224)])
    inputs = load_processor(ModelConfig(path=str(vl_dir))).image_processor(images=[wide, wide], return_tensors="pt")
    patches = int(inputs["image_grid_thw"].prod(dim=1).sum())
    measured = saved_bytes(model, lambda: model.model.get_image_features(
        pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"]))
    # what the forward keeps, without the backward's working set of one layer
    planned = vision_activation_bytes(arch, patches, 4, False) - patches * layer_activation_bytes(arch.vision, 4)
    assert planned == pytest.approx(measured, rel=0.15)
    frozen = read_architecture(str(vl_dir), freeze_vision=True)
    assert vision_activation_bytes(frozen, patches, 4, False) < planned / 5  # only the projector's input


def test_the_filler_row_changes_no_log_probability_of_a_text_batch(vl_model, processor):  # noqa: F811
    from rlcs.engine import Completion
    from rlcs.vision import image_filler

    tokenizer = processor.tokenizer
    prompt = tokenizer(example_prompt(tokenizer, {"prompt": "What is 2 + 3?"}), add_special_tokens=False)["input_ids"]
    answer = tokenizer("<think>2 + 3 = 5</think><answer>5</answer>", add_special_tokens=False)["input_ids"]
    completions = [Completion(0, prompt, answer, [1] * len(answer)), Completion(1, prompt, answer[:5], [1] * 5)]
    plain = build_batch(completions, torch.zeros(2), tokenizer.pad_token_id, torch.device("cpu"))
    filled = build_batch(completions, torch.zeros(2), tokenizer.pad_token_id, torch.device("cpu"),
                         image_filler=image_filler(processor))
    assert filled.model_inputs()["input_ids"].shape[0] == 3 and "pixel_values" in filled.model_inputs()
    with torch.no_grad():
        torch.testing.assert_close(token_logprobs(vl_model, filled)[0], token_logprobs(vl_model, plain)[0],
                                   atol=1e-5, rtol=1e-5)


def test_text_rows_of_an_image_text_model_still_pack(processor):  # noqa: F811
    text = tokenize_image_conversation(processor, [{"role": "user", "content": "What is 2 + 3?"},
                                                   {"role": "assistant", "content": "<think>5</think>"}], [])
    assert "pixel_values" not in (text.vision or {})
    blocks, stats = pack_sequences([text, text], 256, processor.tokenizer.pad_token_id)
    assert stats.sequences == 2 and len(blocks) == 1


def test_optimizer_groups_keep_their_count_and_reject_lrs_with_no_effect(vl_dir):  # noqa: F811
    pytest.importorskip("peft")
    from rlcs.config import LoraConfig, ModelConfig, OptimConfig
    from rlcs.optim import build_optimizer
    from rlcs.runtime import load_trainable_model

    lora = load_trainable_model(ModelConfig(path=str(vl_dir), freeze_vision=True, lora=LoraConfig(r=2)))
    groups = build_optimizer(lora, OptimConfig()).param_groups
    assert [g["role"] for g in groups][:2] == ["decoder", "decoder"]  # both decoder groups, even an empty one
    frozen = load_trainable_model(ModelConfig(path=str(vl_dir), freeze_vision=True))
    with pytest.raises(ValueError, match="optim.lr_vision: no vision parameter trains"):
        build_optimizer(frozen, OptimConfig(lr_vision=1e-5))
