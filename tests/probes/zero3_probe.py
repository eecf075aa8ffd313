"""Run by tests/test_zero3.py under `accelerate launch` with 2 CPU processes and ZeRO-3:

    probe.py MODEL_DIR OUT_JSON

1. generation with the ZeRO-3 hooks removed gives the tokens of the same model unpartitioned, and with
   uneven work (process 0: three prompts in three generate calls and force answering; process 1: no
   prompt at all) every process still makes the same number of generate calls (no hang);
2. after generation the hooks are back: a training forward/backward gives the unpartitioned loss;
3. a non-finite loss inside the graph on process 1 only contributes a zero gradient: DeepSpeed need not
   skip the step, the other micro-batch still updates, and every parameter stays finite.
"""

import json
import sys

import deepspeed
import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlcs.engine import HFEngine, SamplingParams, greedy
from rlcs.guards import NonFiniteGuard
from rlcs.runtime import _cpu_deepspeed_fix

model_dir, out = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
plain = AutoModelForCausalLM.from_pretrained(model_dir).eval()  # loaded before ZeRO-3 is configured
prompts = ["<|user|>\nAdd up the numbers:\nA: 1\n<|assistant|>\n", "<|user|>\nq\n<|assistant|>\n",
           "<|user|>\nCopy the letters:\nA: b\nB: c\n<|assistant|>\n"]
expected = [c.token_ids for c in HFEngine(plain, tokenizer).generate(prompts, 1, greedy(12))]
ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12]])
with torch.no_grad():
    expected_loss = plain(input_ids=ids, labels=ids).loss.item()

accelerator = Accelerator(kwargs_handlers=_cpu_deepspeed_fix(), gradient_accumulation_steps=2)
accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
model = AutoModelForCausalLM.from_pretrained(model_dir)
model, optimizer = accelerator.prepare(model, torch.optim.AdamW(model.parameters(), lr=1e-2))
rank = accelerator.process_index
result = {"rank": rank}

engine = HFEngine(model, tokenizer, accelerator, max_rows=1)
mine = prompts if rank == 0 else []
got = [c.token_ids for c in engine.generate(mine, 1, greedy(12))]
result["greedy_matches"] = got == expected[:len(got)]
# greedy, so which completions get stuck (and forced) does not depend on the sampling draws
forced = engine.generate(mine, 1, SamplingParams(max_new_tokens=10, answer_budget=4, temperature=0.0))
result["forced"] = sum(c.forced for c in forced)

model.train()
loss = model(input_ids=ids, labels=ids, use_cache=False).loss
result["loss_after_generation"], result["expected_loss"] = loss.item(), expected_loss
accelerator.backward(loss * 0.0)  # hooks back: backward runs; no gradient from it (zero)

layer = accelerator.unwrap_model(model).model.layers[0]
poison = {"on": False}


def overflow(module, inputs, output):
    """An overflow caused by this micro-batch's data (not by the guard's one-token stand-in)."""
    if not poison["on"] or inputs[0].shape[1] == 1:
        return None
    return output * float("inf") if torch.is_tensor(output) else (output[0] * float("inf"), *output[1:])


layer.register_forward_hook(overflow)
with deepspeed.zero.GatheredParameters(list(model.parameters())):
    before = [p.detach().clone() for p in model.parameters()]
guard = NonFiniteGuard(accelerator, model)
skipped = 0
for micro in range(2):
    poison["on"] = rank == 1 and micro == 0
    with accelerator.accumulate(model):
        loss, was_skipped = guard.check(model(input_ids=ids, labels=ids, use_cache=False).loss)
        skipped += was_skipped
        accelerator.backward(loss)
        guard.step(optimizer)
poison["on"] = False
with deepspeed.zero.GatheredParameters(list(model.parameters())):
    after = [p.detach().clone() for p in model.parameters()]
result["guard_skipped"] = skipped
result["deepspeed_skipped_steps"] = model.skipped_steps
result["finite"] = all(torch.isfinite(p).all().item() for p in after)
result["changed"] = any(not torch.equal(a, b) for a, b in zip(before, after))

everyone = [None] * accelerator.num_processes
torch.distributed.all_gather_object(everyone, result)
if accelerator.is_main_process:
    with open(out, "w") as handle:
        json.dump(everyone, handle)
# Like every rlcs stage (MetricsLogger.close): leaving with the process group alive let a communication
# thread be torn down at interpreter exit, which aborted one process once in CI after its work was done.
accelerator.wait_for_everyone()
accelerator.end_training()
