"""The LLM judge against a local fake server, weighted reward terms, plugins (entry points, files) and the
verifier workers (replacement, memory limit)."""

import json
import resource
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rewards
from rewards.registry import RewardSpecError
from rewards.router import RewardRouter


def boxed(answer: str) -> str:
    return f"<think>work</think><answer><|begin_of_box|>{answer}<|end_of_box|></answer>"


class FakeJudge(BaseHTTPRequestHandler):
    """Says 1 when the response equals the reference; /flaky fails once with 500; /slow never answers in time."""

    calls: list[str] = []
    flaky_failures = {"left": 0}

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeJudge.calls.append(self.path)
        if self.path.startswith("/slow"):
            time.sleep(2)
        if self.path.startswith("/flaky") and FakeJudge.flaky_failures["left"] > 0:
            FakeJudge.flaky_failures["left"] -= 1
            self.send_response(500)
            self.end_headers()
            return
        prompt = body["messages"][0]["content"]
        reference = prompt.split("Reference answer:\n")[1].split("\n")[0]
        response = prompt.split("Response:\n")[1].split("\n")[0]
        verdict = "1" if reference.strip().lower() == response.strip().lower() else "0"
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": f"Score: {verdict}"}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def judge_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_judge_scores_through_the_endpoint(judge_url):
    judge = rewards.get("judge")
    example = {"prompt": "Capital of France?", "answer": "Paris"}
    assert judge(boxed("paris"), example, url=f"{judge_url}/v1/chat/completions") == 1.0
    assert judge(boxed("Lyon"), example, url=f"{judge_url}/v1/chat/completions") == 0.0
    assert judge("<think>x</think>", example, url=f"{judge_url}/v1/chat/completions") == 0.0  # nothing to judge


def test_judge_retries_server_errors(judge_url):
    FakeJudge.flaky_failures["left"] = 1
    FakeJudge.calls.clear()
    score = rewards.get("judge")(boxed("Paris"), {"prompt": "q", "answer": "Paris"}, url=f"{judge_url}/flaky",
                                 backoff_s=0.01)
    assert score == 1.0 and FakeJudge.calls == ["/flaky", "/flaky"]


def test_judge_times_out_and_the_router_counts_it(judge_url):
    router = RewardRouter.from_config({"open": {"verifier": "judge", "min_reward": -1.0, "kwargs": {
        "url": f"{judge_url}/slow", "timeout_s": 0.3, "retries": 1, "backoff_s": 0.01}}})
    started = time.monotonic()
    assert router.score([boxed("Paris")], [{"domain": "open", "id": "o1", "prompt": "q", "answer": "Paris"}]) == [-1.0]
    assert time.monotonic() - started < 2.0 and router.errors == {"open": 1}


def test_weighted_terms_sum_and_skip_not_applicable(tmp_path):
    file = tmp_path / "terms.py"
    file.write_text("def never(completion, example):\n    return None\n")
    router = RewardRouter.from_config({"math": {"terms": [
        {"verifier": "math", "weight": 0.9}, {"verifier": "format", "weight": 0.1},
        {"verifier": f"{file}:never", "weight": 5.0}]}})
    examples = [{"domain": "math", "answer": "4"}] * 3
    scores = router.score([boxed("4"), boxed("5"), "<think>x</think>4"], examples)
    assert scores == pytest.approx([1.0, 0.1, 0.0])


def test_term_errors_name_their_position():
    with pytest.raises(RewardSpecError, match=r"rewards.math.terms\[1\]: unknown reward 'fromat'"):
        RewardRouter.from_config({"math": {"terms": [{"verifier": "math"}, {"verifier": "fromat"}]}})


def test_recipe_rejects_an_entry_with_both_forms():
    from rlcs.config import RewardEntry

    with pytest.raises(ValueError, match="either 'verifier'"):
        RewardEntry(verifier="math", terms=[{"verifier": "format"}])


def test_entry_point_plugin(tmp_path, monkeypatch):
    (tmp_path / "acme_rewards.py").write_text("def shout(completion, example):\n    return 0.75\n")
    dist = tmp_path / "acme_rewards-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rewards\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rlcs.rewards]\nshout = acme_rewards:shout\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert rewards.get("shout")("", {}) == 0.75
    router = RewardRouter.from_config({"loud": {"verifier": "shout"}}, [{"domain": "loud"}])
    assert router.score(["x"], [{"domain": "loud"}]) == [0.75]
    sys.modules.pop("acme_rewards", None)


def test_failures_counted_apart_do_not_show_in_the_run_counters(tmp_path):
    plugin = tmp_path / "broken.py"
    plugin.write_text("def score(completion, example):\n    raise ValueError('bad verifier')\n")
    router = RewardRouter.from_config({"d": {"verifier": f"{plugin}:score"}})
    router.score(["x"], [{"domain": "d", "answer": "1"}])
    with router.counted_apart() as apart:
        assert router.score(["x", "y"], [{"domain": "d", "answer": "1"}] * 2) == [0.0, 0.0]
    assert apart == {"d": 2}
    assert router.metrics()["reward/d/errors"] == 1  # only the failure scored outside the block


PLUGIN = '''
import rewards
from helpers import scale  # a module beside this file


@rewards.register("plugin_registered")
def scored(completion, example):
    return scale * len(completion)
'''


def test_a_file_plugin_loads_once_per_process_and_imports_its_neighbours(tmp_path, monkeypatch):
    from rewards.isolation import Call, VerifierPool

    (tmp_path / "helpers.py").write_text("scale = 0.25\n")
    (tmp_path / "plugin.py").write_text(PLUGIN)
    spec = f"{tmp_path / 'plugin.py'}:scored"
    assert rewards.get(spec)("ab", {}) == 0.5
    monkeypatch.chdir(tmp_path)
    assert rewards.get("plugin.py:scored") is rewards.get(spec)  # another path to the same file: not re-run
    assert rewards.get("plugin_registered") is rewards.get(spec)
    with VerifierPool(workers=1, timeout_s=30) as pool:  # every call in one worker: the file must not re-run
        outcomes = pool.run([Call(spec, {}, "abcd", {}) for _ in range(3)])
    assert [(o.status, o.value) for o in outcomes] == [("ok", 1.0)] * 3, outcomes
    sys.modules.pop("helpers", None)


def test_a_file_plugins_folder_does_not_shadow_later_imports(tmp_path, monkeypatch):
    trainer, plugins = tmp_path / "trainer", tmp_path / "plugins"
    trainer.mkdir()
    plugins.mkdir()
    # the trainer's own module, and a module of the same name beside the reward file that the file never imports
    (trainer / "rlcs_shadow_probe.py").write_text("owner = 'trainer'\n")
    (plugins / "rlcs_shadow_probe.py").write_text("owner = 'plugin'\n")
    (plugins / "rlcs_shadow_helpers.py").write_text("scale = 2\n")
    (plugins / "rlcs_shadow_lazy.py").write_text("scale = 3\n")
    (plugins / "shadowing.py").write_text(
        "from rlcs_shadow_helpers import scale  # its neighbour, at import\n\n\n"
        "def score(completion, example):\n    from rlcs_shadow_lazy import scale as later  # and at call time\n"
        "    return scale * later\n")
    monkeypatch.syspath_prepend(str(trainer))  # sys.path is restored afterwards
    try:
        assert rewards.get(f"{plugins / 'shadowing.py'}:score")("", {}) == 6
        import rlcs_shadow_probe

        assert rlcs_shadow_probe.owner == "trainer"
    finally:
        for name in ("rlcs_shadow_probe", "rlcs_shadow_helpers", "rlcs_shadow_lazy"):
            sys.modules.pop(name, None)


def test_the_routers_memory_mb_reaches_its_workers(tmp_path):
    plugin = tmp_path / "limit.py"
    plugin.write_text("import resource\n\n\ndef limit(completion, example):\n"
                      "    hard = resource.getrlimit(resource.RLIMIT_AS)[1]\n"
                      "    return -1 if hard == resource.RLIM_INFINITY else hard >> 20\n")
    unlimited = -1.0 if resource.getrlimit(resource.RLIMIT_AS)[1] == resource.RLIM_INFINITY else None
    for memory_mb, expected in ((1024, 1024.0), (None, unlimited)):  # None: the worker keeps what it inherits
        router = RewardRouter.from_config({"d": {"verifier": f"{plugin}:limit"}}, workers=1, memory_mb=memory_mb)
        try:
            assert router.score(["x"], [{"domain": "d"}]) == [expected]
        finally:
            router.close()
    default = RewardRouter.from_config({"d": {"verifier": f"{plugin}:limit"}}, workers=1)
    try:
        assert default.pool.memory_mb == 2048 and default.score(["x"], [{"domain": "d"}]) == [2048.0]
    finally:
        default.close()


def test_two_entry_points_with_one_name_are_an_error_naming_both(tmp_path, monkeypatch):
    for package, target in (("acme", "acme_a:score"), ("rival", "rival_b:score")):
        dist = tmp_path / f"{package}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(f"[rlcs.rewards]\nsame_name = {target}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RewardSpecError, match=r"two entry points are named 'same_name'.*acme_a:score \(from acme\)"
                                              r" and rival_b:score \(from rival\)"):
        rewards.get("same_name")


def test_a_worker_that_died_while_idle_is_replaced_not_raised():
    from rewards.isolation import Call, VerifierPool

    call = Call("numeric", {}, boxed("4"), {"answer": "4"})
    with VerifierPool(workers=2, timeout_s=30) as pool:
        assert [o.value for o in pool.run([call])] == [1.0]
        for worker in pool.workers:
            worker.process.kill()
            worker.process.join()
        outcomes = pool.run([call] * 3)
        assert [(o.status, o.value) for o in outcomes] == [("ok", 1.0)] * 3
        assert all(w.process.is_alive() for w in pool.workers)


def test_workers_have_a_memory_limit(tmp_path):
    from rewards.isolation import Call, VerifierPool

    plugin = tmp_path / "greedy.py"
    plugin.write_text("def greedy(completion, example):\n    return len(bytearray(4 * 1024 ** 3))\n")
    with VerifierPool(workers=1, timeout_s=30, memory_mb=512) as pool:
        [outcome] = pool.run([Call(f"{plugin}:greedy", {}, "", {})])
        assert outcome.status == "error" and "MemoryError" in outcome.message
        assert pool.run([Call("numeric", {}, boxed("4"), {"answer": "4"})])[0].value == 1.0
