"""Token generation: the one engine that rollouts, force answering, held-out eval and grading share.

An engine turns prompts into ``Completion`` records under ``SamplingParams``
(``temperature: 0`` is greedy). ``HFEngine`` runs Hugging Face ``generate`` on
the training model itself; a vLLM or SGLang engine implements the same two
methods, ``sync_weights()`` (push the policy's new weights to the inference
server after an optimizer step; nothing to do for ``HFEngine``) and
``generate(prompts, n, params)``.

Force answering (GLM-4.1V-Thinking): a completion that spends its whole thinking
budget without closing ``</think>`` gets ``</think><answer>`` appended and a
short answer budget, so it is scored on an answer rather than on a truncation.
The inserted tokens are context, not policy output: their loss mask is 0.

Several processes: under ZeRO-3 every ``generate`` call is a collective (each
decoding step syncs across processes), so every process must make the same
number of calls. The engine makes the number of calls the largest any process
needs, a process with fewer rows running throw-away ones.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import GenerationConfig

from rewards.extract import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE
from rlcs.packing import batch_vision
from rlcs.vision import split_processor_output, vision_token_ids
from rlcs.zero3 import generation_weights, is_zero3, unwrapped_model


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256  # thinking budget + answer budget
    answer_budget: int = 32  # tokens reserved for the answer after a forced </think>
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0  # the paper found lower top-p garbles output over time
    top_k: int = 0  # 0: off
    force_answer: bool = True

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def from_rollout(cls, rollout) -> SamplingParams:
        """From a recipe's ``rollout`` section."""
        return cls(rollout.max_new_tokens, rollout.answer_budget, rollout.temperature, rollout.top_p, rollout.top_k,
                   rollout.force_answer)


def greedy(max_new_tokens: int) -> SamplingParams:
    """Greedy decoding without force answering: what held-out accuracy measures."""
    return SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, force_answer=False)


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt and the images its placeholders stand for (``rlcs.chat.example_request``)."""

    text: str
    images: tuple = ()  # PIL images, in placeholder order


@dataclass
class Completion:
    prompt_index: int
    prompt_ids: list[int]
    token_ids: list[int]  # everything after the prompt, forced tokens included
    loss_mask: list[int]  # 1 where the policy chose the token
    text: str = ""
    truncated: bool = False  # ended without a stop
    forced: bool = False  # </think><answer> was inserted
    # the engine's log-probability of each token at the sampling temperature, where the engine reports
    # them (vLLM); NaN at inserted tokens
    logprobs: list[float] | None = None
    # the processor's tensors for the prompt's images (pixel_values, image_grid_thw, per-token type ids
    # over prompt_ids); None for a text prompt
    vision: dict[str, torch.Tensor] | None = None


class GenerationEngine(Protocol):
    def sync_weights(self) -> None:
        """Make the next ``generate`` use the policy's current weights."""

    def generate(self, prompts: list[str | Prompt], n: int, params: SamplingParams,
                 progress: str | None = None) -> list[Completion]:
        """``n`` completions per prompt, grouped by prompt in prompt order."""


def stop_ids(tokenizer, generation_config: GenerationConfig | None = None) -> list[int]:
    """Every end-of-sequence id (the tokenizer's and all of a checkpoint's ``eos_token_id`` list) and
    ``</answer>`` where it is one token."""
    ids = [tokenizer.eos_token_id]
    eos = getattr(generation_config, "eos_token_id", None)
    ids += eos if isinstance(eos, list) else [eos]
    ids.append(_single_token_id(tokenizer, ANSWER_CLOSE))
    return list(dict.fromkeys(i for i in ids if i is not None))


def _single_token_id(tokenizer, text: str) -> int | None:
    """The id of ``text`` where it is one token of the tokenizer's vocabulary, else None."""
    token_id = tokenizer.convert_tokens_to_ids(text)
    return token_id if isinstance(token_id, int) and token_id != tokenizer.unk_token_id else None


class TokenEngine:
    """What every engine shares: the stop ids, force answering and the completion layout. A subclass
    supplies ``_continue`` (new tokens for token contexts) and, where generation needs a set-up around
    it (ZeRO-3's gathered weights), ``_generating``."""

    reports_logprobs = False  # whether completions carry the engine's log-probabilities

    def __init__(self, tokenizer, generation_config: GenerationConfig | None = None, accelerator=None,
                 processor=None):
        self.tokenizer, self.accelerator, self.processor = tokenizer, accelerator, processor
        self.never_generated = vision_token_ids(processor) if processor is not None else []
        self.stops = stop_ids(tokenizer, generation_config)
        self.answer_close_is_one_token = _single_token_id(tokenizer, ANSWER_CLOSE) is not None
        self.force_ids = tokenizer(THINK_CLOSE + ANSWER_OPEN, add_special_tokens=False)["input_ids"]

    def sync_weights(self) -> None:
        """Nothing to copy where generation runs on the training model's own parameters."""

    def release_memory(self) -> None:
        """Nothing to free where generation runs on the training model's own parameters."""

    def generate(self, prompts: list[str | Prompt], n: int, params: SamplingParams,
                 progress: str | None = None) -> list[Completion]:
        encoded = [self._encode(p) for p in prompts]
        prompt_ids = [ids for ids, _ in encoded]
        visions = [vision for _, vision in encoded]
        think_budget = params.max_new_tokens - (params.answer_budget if params.force_answer else 0)
        with self._generating():
            first = self._continue(prompt_ids, n, think_budget, params, progress, visions=visions)
            completions = [Completion(index // n, prompt_ids[index // n], tokens, [1] * len(tokens), logprobs=lps,
                                      vision=visions[index // n])
                           for index, (tokens, lps) in enumerate(first)]
            if params.force_answer:
                self._force_answers(completions, params)
        for completion in completions:
            completion.text = self.tokenizer.decode(completion.token_ids, skip_special_tokens=False)
            completion.truncated = not self._finished(completion.token_ids, completion.text)
        return completions

    def _encode(self, prompt: str | Prompt) -> tuple[list[int], dict[str, torch.Tensor] | None]:
        """Token ids of a prompt and, for one with images, the processor's tensors (its placeholders
        expanded to each image's patch tokens)."""
        if isinstance(prompt, str) or not prompt.images:
            text = prompt if isinstance(prompt, str) else prompt.text
            return self.tokenizer(text, add_special_tokens=False)["input_ids"], None
        if self.processor is None:
            raise ValueError("a prompt with images needs the model's processor; this engine was built without one "
                             "(is the recipe's model a vision-language model?)")
        return split_processor_output(self.processor(text=[prompt.text], images=list(prompt.images),
                                                     return_tensors="pt", add_special_tokens=False))

    def _generating(self):
        return contextlib.nullcontext()

    def _continue(self, contexts: list[list[int]], n: int, max_new_tokens: int, params: SamplingParams,
                  progress: str | None = None, visions: list | None = None
                  ) -> list[tuple[list[int], list[float] | None]]:
        """``n`` continuations per context, grouped by context: (new tokens cut after the first stop,
        their log-probabilities where the engine reports them). ``visions``: per context, the image
        tensors of its prompt (None for text)."""
        raise NotImplementedError

    def _force_answers(self, completions: list[Completion], params: SamplingParams) -> None:
        stuck = [c for c in completions if not self._finished(c.token_ids)]
        # </think> is looked for in the text: a checkpoint's tokenizer may spell it in several tokens.
        stuck = [c for c in stuck if THINK_CLOSE not in self.tokenizer.decode(c.token_ids)]
        contexts = [c.prompt_ids + c.token_ids + self.force_ids for c in stuck]
        answers = self._continue(contexts, 1, params.answer_budget, params, visions=[c.vision for c in stuck])
        for completion, (answer, answer_logprobs) in zip(stuck, answers):
            completion.token_ids += self.force_ids + answer
            completion.loss_mask += [0] * len(self.force_ids) + [1] * len(answer)
            if completion.logprobs is not None and answer_logprobs is not None:
                completion.logprobs += [math.nan] * len(self.force_ids) + answer_logprobs
            else:  # never a list shorter than the tokens
                completion.logprobs = None
            completion.forced = True

    def _cut(self, row: list[int]) -> list[int]:
        """``row`` up to and including the first stop id, or the shortest prefix that spells ``</answer>``."""
        end = next((k + 1 for k, t in enumerate(row) if t in self.stops), len(row))
        row = row[:end]
        if not self.answer_close_is_one_token and ANSWER_CLOSE in self.tokenizer.decode(row):
            # the shortest prefix that spells </answer> (containing it only grows with the prefix)
            low, high = 1, len(row)
            while low < high:
                middle = (low + high) // 2
                if ANSWER_CLOSE in self.tokenizer.decode(row[:middle]):
                    high = middle
                else:
                    low = middle + 1
            row = row[:low]
        return row

    def _processes(self) -> int:
        return self.accelerator.num_processes if self.accelerator is not None else 1

    def _is_main(self) -> bool:
        return self.accelerator is None or self.accelerator.is_local_main_process

    def _finished(self, token_ids: list[int], text: str | None = None) -> bool:
        if token_ids and token_ids[-1] in self.stops:
            return True
        if self.answer_close_is_one_token:
            return False
        text = self.tokenizer.decode(token_ids) if text is None else text
        return ANSWER_CLOSE in text  # the stop string may end inside the last token


class HFEngine(TokenEngine):
    """Hugging Face ``generate`` on the training model itself. ``max_rows``: sequences per ``generate``
    call (contexts are sorted by length and chunked), which bounds the KV cache of one call."""

    def __init__(self, model, tokenizer, accelerator=None, max_rows: int = 256, processor=None):
        generation_config = getattr(unwrapped_model(model, accelerator), "generation_config", None)
        super().__init__(tokenizer, generation_config, accelerator, processor)
        self.model, self.max_rows = model, max_rows
        self._active = None  # the model with its weights gathered, while generating

    @contextlib.contextmanager
    def _generating(self):
        with torch.no_grad(), generation_weights(self.model, self.accelerator) as model:
            was_training = model.training
            model.eval()
            self._active = model
            try:
                yield
            finally:
                self._active = None
                model.train(was_training)

    def _continue(self, contexts, n, max_new_tokens, params, progress=None, visions=None):
        rows = [context for context in contexts for _ in range(n)]
        row_visions = [vision for vision in (visions or [None] * len(contexts)) for _ in range(n)]
        return [(tokens, None) for tokens in self._generate_all(self._active, rows, max_new_tokens, params, progress,
                                                                row_visions)]

    def _generate_all(self, model, contexts: list[list[int]], max_new_tokens: int, params: SamplingParams,
                      progress: str | None = None, visions: list | None = None) -> list[list[int]]:
        """New tokens per context, in chunks of at most ``max_rows`` contexts of similar length; as many
        ``generate`` calls as the process that needs the most (the others run a throw-away row)."""
        order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]))
        chunks = [order[i:i + self.max_rows] for i in range(0, len(order), self.max_rows)]
        calls = self._most_over_processes(len(chunks))
        results: list[list[int]] = [[] for _ in contexts]
        for call in _progress(range(calls), progress, self._is_main()):
            if call >= len(chunks):
                self._sample(model, [list(self.force_ids)], max_new_tokens, params)
                continue
            chunk_visions = [visions[i] for i in chunks[call]] if visions else None
            for index, tokens in zip(chunks[call], self._sample(model, [contexts[i] for i in chunks[call]],
                                                                max_new_tokens, params, chunk_visions)):
                results[index] = tokens
        return results

    def _sample(self, model, contexts: list[list[int]], max_new_tokens: int, params: SamplingParams,
                visions: list | None = None):
        """New tokens per context, cut after the first stop (kept) and without padding."""
        pad = self.tokenizer.pad_token_id
        width = max(len(c) for c in contexts)
        device = model.device
        input_ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts], device=device)
        attention = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts], device=device)
        config = self._generation_config(max_new_tokens, params)
        extra = {} if self.answer_close_is_one_token else {"tokenizer": self.tokenizer}
        if visions and any(v is not None for v in visions):
            extra.update({key: value.to(device) for key, value in
                          batch_vision(visions, [len(c) for c in contexts], width, left_pad=True).items()})
        with _only_this_config(model, config):
            output = model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config,
                                    synced_gpus=self._processes() > 1 and is_zero3(self.accelerator), **extra)
        return [self._cut(row) for row in output[:, width:].tolist()]

    def _generation_config(self, max_new_tokens: int, params: SamplingParams) -> GenerationConfig:
        """Built from the params alone: nothing (repetition_penalty, a hub top_k, ...) is inherited from
        the checkpoint's ``generation_config``. Fields left unset would be filled from it or from
        transformers' defaults (top_k=50), so the neutral values are spelled out."""
        sampling = ({} if params.greedy else  # greedy ignores them (and transformers warns when set)
                    {"temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k})
        stop_strings = None if self.answer_close_is_one_token else [ANSWER_CLOSE]
        return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=not params.greedy, num_beams=1,
                                repetition_penalty=1.0, no_repeat_ngram_size=0, length_penalty=1.0,
                                eos_token_id=self.stops, pad_token_id=self.tokenizer.pad_token_id,
                                stop_strings=stop_strings, suppress_tokens=self.never_generated or None,
                                **sampling)

    def _most_over_processes(self, count: int) -> int:
        if self._processes() == 1:
            return count
        counts = self.accelerator.gather(torch.tensor([count], device=self.accelerator.device))
        return int(counts.max().item())


def build_engine(rollout, model, tokenizer, accelerator, model_config, seed: int,
                 max_rows: int | None = None, processor=None) -> TokenEngine:
    """The engine a recipe's ``rollout.engine`` names, for ``model`` (the policy, prepared); ``max_rows``
    overrides ``rollout.max_rows_per_generate`` (HF only: vLLM schedules its own batches). ``processor``:
    a vision-language model's, for prompts with images (HF engine only, so far)."""
    if rollout.engine == "vllm":
        if processor is not None:
            raise ValueError("rollout.engine: vllm does not take image prompts in rlcs yet; use the hf engine "
                             "for vision-language models")
        from rlcs.vllm_engine import VLLMEngine

        return VLLMEngine(model, tokenizer, accelerator, model_config, rollout.vllm, seed)
    return HFEngine(model, tokenizer, accelerator, max_rows or rollout.max_rows_per_generate, processor)


@contextlib.contextmanager
def _only_this_config(model, config: GenerationConfig):
    """``generate`` fills a passed config's unset fields from ``model.generation_config``; with the
    model's own config swapped for this one for the call, nothing else leaks in."""
    saved = model.generation_config
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = saved


def _progress(calls, desc: str | None, enabled: bool):
    if desc is None or len(calls) <= 1:
        return calls
    from tqdm.auto import tqdm

    return tqdm(calls, desc=desc, disable=not enabled)
