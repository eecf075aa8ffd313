"""The code sandbox against hostile programs, and the code verifier on top of it.

Every attack below is a solution a policy could write. Most start by disarming the in-process audit hook (a
CPython audit hook is no security boundary: the harness's own globals are reachable), so what is tested is the
OS sandbox (bubblewrap: namespaces, seccomp, rlimits) and the verdict that is computed outside the solution's
process. CI installs bwrap and sets RLCS_REQUIRE_SANDBOX=1, so there its absence fails loudly; elsewhere (the
README's `pip install -e ".[dev]"` on a machine without bubblewrap) the tests that need the real sandbox are
skipped with the install command, and the tests of the no-bwrap path still run.
"""

import glob
import logging
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import rewards
from rewards import sandbox
from rewards.code import extract_code
from rewards.router import RewardRouter
from rewards.sandbox import RUN_ENV, SandboxFailure, SandboxResult, SandboxUnavailable, run_python

ADD = "def add(a, b):\n    return a + b\n"
WRONG_ADD = "def add(a, b):\n    return 3\n"  # passes the first test only
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
# The harness's blocklists live in its module globals, which the solution can reach: this empties them. Its
# first lines are a safety catch for this test suite, not part of any attack: should the sandbox ever lose its
# PID namespace (where the solution is process 2), the attacks that follow (kill(-1), a fork bomb, as root)
# would hit this machine, so they do not run; the tests that need them then fail.
DISARM = ("import os\nif os.getpid() > 50:\n"
          "    raise RuntimeError('not in a PID namespace of its own: not attacking')\n"
          "import __main__\n__main__._BLOCKED_EVENTS = frozenset()\n__main__._PATH_EVENTS = frozenset()\n")
REPO = Path(__file__).resolve().parents[1]


def leftover_processes(run_id: str = "") -> list[int]:
    """Live processes carrying the sandbox's run marker in their environment (any run when ``run_id`` is empty)."""
    return processes_with(f"{RUN_ENV}={run_id}".encode())


def processes_with(needle: bytes) -> list[int]:
    """Live processes whose environment contains ``needle``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass  # gone meanwhile, or a zombie
    return found


def sandbox_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "rlcs-sandbox-*")))


def test_bubblewrap_is_here_and_passes_its_self_test():
    status = sandbox.sandbox_status()
    assert status.available, f"no OS sandbox on this machine: {status.reason} (CI installs bubblewrap)"


def test_a_correct_solution_passes_every_test():
    result = run_python(ADD, ADD_TESTS)
    assert (result.passed, result.total, result.status) == (2, 2, "ok")


def test_partial_credit_and_the_first_error_are_reported():
    result = run_python(WRONG_ADD, ADD_TESTS)
    assert (result.passed, result.status, result.share) == (1, "ok", 0.5) and "AssertionError" in result.detail


def test_what_tests_usually_do_works_across_the_process_boundary():
    solution = textwrap.dedent("""
        import math
        class Solution:
            def two_sum(self, nums, target):
                seen = {}
                for i, n in enumerate(nums):
                    if target - n in seen:
                        return [seen[target - n], i]
                    seen[n] = i
        def squares(n):
            yield from (i * i for i in range(n))
        def sort_in_place(items):
            items.sort()
        def check(n):
            if n < 0:
                raise ValueError("negative")
            return {"n": n, "root": math.sqrt(n), "pair": (n, n), "set": {n}, "big": 10 ** 400 + n}
        LIMIT = 10
    """)
    tests = [
        "assert Solution().two_sum([2, 7, 11], 9) == [0, 1]",
        "assert list(squares(4)) == [0, 1, 4, 9]",
        "items = [3, 1, 2]\nsort_in_place(items)\nassert items == [1, 2, 3]",  # in-place changes come back
        "assert check(4) == {'n': 4, 'root': 2.0, 'pair': (4, 4), 'set': {4}, 'big': 10 ** 400 + 4}",
        "try:\n    check(-1)\nexcept ValueError as e:\n    assert 'negative' in str(e)\nelse:\n    assert False",
        "assert math.isclose(check(2)['root'], 1.41421356, rel_tol=1e-6)",  # the solution's import math
        "assert LIMIT == 10",
    ]
    result = run_python(solution, tests)
    assert (result.passed, result.detail) == (len(tests), "")


def test_threads_still_work():
    threaded = "import threading\nout = []\nt = threading.Thread(target=out.append, args=(1,))\nt.start()\nt.join()\n"
    assert run_python(threaded + ADD, ADD_TESTS).passed == 2


def test_the_audit_hook_is_defence_in_depth_only():
    # with the hook on, os.kill is refused; disarmed, it is not, so the attacks below meet the OS sandbox itself
    probe = "import os\nos.kill(os.getpid(), 0)\n" + ADD
    assert "os.kill is not allowed" in run_python(probe, ADD_TESTS).detail
    assert run_python(DISARM + probe, ADD_TESTS).passed == 2


# ---- starting processes ----

@pytest.mark.parametrize("disarm", ["", DISARM])
@pytest.mark.parametrize("attack", ["fork_exec", "fork", "subprocess", "execv"])
def test_no_shell_and_no_new_process_can_write_outside(tmp_path, attack, disarm):
    marker = tmp_path / "escaped"
    os.chmod(tmp_path, 0o777)  # even a world-writable host directory is out of reach
    write = f"open({str(marker)!r}, 'w').write('x')"
    code = {
        "fork_exec": f"""
            import _posixsubprocess, os, sys
            r, w = os.pipe()
            argv = [sys.executable, '-c', {write!r}]
            _posixsubprocess.fork_exec(argv, [os.fsencode(sys.executable)], True, (w,), None, None, -1, -1, -1, -1,
                                       -1, -1, r, w, True, False, -1, None, None, None, -1, None, False)
            os.waitpid(-1, 0)
        """,
        "fork": f"""
            import os
            if os.fork() == 0:
                {write}
                os._exit(0)
            os.wait()
        """,
        "subprocess": f"""
            import subprocess, sys
            subprocess.run(['/bin/sh', '-c', 'echo x > {marker}'])
            subprocess.run([sys.executable, '-c', {write!r}])
        """,
        "execv": "import os\nos.execv('/bin/sh', ['sh', '-c', 'echo x > " + str(marker) + "'])\n",
    }[attack]
    result = run_python(disarm + textwrap.dedent(code) + ADD, ADD_TESTS)
    assert not marker.exists()
    assert result.passed == 0
    if disarm:  # what stopped it: seccomp refuses the fork; exec finds no shell in the sandbox
        assert ("No such file" if attack == "execv" else "Operation not permitted") in result.detail


def test_writes_land_in_a_private_tmpfs_never_on_the_host(tmp_path):
    os.chmod(tmp_path, 0o777)
    targets = [tmp_path / "escaped", REPO / "escaped-from-sandbox", Path("/tmp/escaped-from-sandbox")]
    code = DISARM + "".join(f"try:\n    open({str(t)!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
                            for t in targets) + "open('scratch.txt', 'w').write('ok')\n" + ADD
    assert run_python(code, ADD_TESTS).passed == 2  # its own directory is writable
    assert not any(t.exists() for t in targets)


# ---- forging the score ----

FORGERIES = {
    "old result line": 'print("\\n" + "0" * 32 + \'{"passed": 2, "error": ""}\')\n',
    "fake frames on every fd": textwrap.dedent("""
        import json, os, struct
        fake = json.dumps({"passed": 500000, "error": ""}).encode()
        for fd in range(64):
            try:
                os.write(fd, struct.pack(">I", len(fake)) + fake)
            except OSError:
                pass
    """),
    "patched harness": textwrap.dedent("""
        import __main__
        __main__._run_tests = lambda *a: None
        __main__._Remote.__eq__ = lambda self, other: True
    """),
    "shadowed builtins and modules": textwrap.dedent("""
        len = lambda *a: 2
        all = lambda *a: True
        class math:
            isclose = staticmethod(lambda *a, **k: True)
        unittest = math
    """),
    "patched assert and unittest": textwrap.dedent("""
        import builtins, math, unittest
        builtins.AssertionError = type("Quiet", (Exception,), {})
        unittest.TestCase.assertEqual = lambda *a, **k: None
        math.isclose = lambda *a, **k: True
    """),
}
FORGERY_TESTS = ADD_TESTS + ["import unittest\nunittest.TestCase().assertEqual(add(2, 2), 4)",
                             "assert math.isclose(add(0.5, 0.25), 0.75)",  # math: the solution's import, if any
                             "assert len(str(add(10, 5))) == 2", "assert all(add(i, i) == 2 * i for i in range(3))"]


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("ending", ["", "import os\nos._exit(0)\n"])
def test_a_forged_result_never_raises_the_share(forgery, ending):
    honest = run_python("import math\n" + WRONG_ADD, FORGERY_TESTS)
    assert honest.passed == 1  # add(1, 2) == 3
    result = run_python(FORGERIES[forgery] + WRONG_ADD + ending, FORGERY_TESTS)
    assert result.passed <= honest.passed and result.share <= 1 / 6
    if not ending and forgery != "fake frames on every fd":  # its reply channel still works
        assert result.passed == honest.passed


def test_an_object_that_equals_everything_is_not_equal_to_anything():
    always = "class Yes:\n    __eq__ = lambda self, other: True\n    __ne__ = lambda self, other: False\n"
    for solution in (always + "def add(a, b):\n    return Yes()\n",
                     "class S(int):\n    __eq__ = lambda self, other: True\n    __hash__ = int.__hash__\n"
                     "def add(a, b):\n    return S(0)\n"):
        assert run_python(solution, ADD_TESTS).passed == 0


def test_a_solution_objects_truth_value_and_inequality_are_not_the_handles():
    # the object is falsy and unequal to nothing in real Python: a handle's identity must not decide either
    solution = ("class Falsy:\n    def __bool__(self):\n        return False\n"
                "class Empty:\n    def __len__(self):\n        return 0\n"
                "def f():\n    return Falsy()\ndef g():\n    return Empty()\n")
    fooled = ["assert f()", "assert g()", "assert f() != 3", "assert f() != f()", "assert not (f() == 3)"]
    honest = ["assert not f()", "assert not g()", "assert f() is not None", "assert bool(f()) is False",
              "h = f()\nassert h in [h]"]  # membership by identity still works
    result = run_python(solution, fooled + honest)
    assert (result.passed, result.status) == (len(honest), "ok"), result.detail
    bad_bool = "class Odd:\n    def __bool__(self):\n        return 2\ndef f():\n    return Odd()\n"
    assert run_python(bad_bool, ["assert f()", "assert not f()"]).passed == 0


def test_the_share_is_clamped_to_zero_one():
    assert SandboxResult(500000, 2, "ok").share == 1.0
    assert SandboxResult(-3, 2, "ok").share == 0.0
    assert SandboxResult(0, 0, "ok").share == 0.0


def test_the_solution_holds_no_privilege():
    code = DISARM + textwrap.dedent("""
        import os
        def attempt(name):
            calls = {"setuid 0": lambda: os.setuid(0), "chroot": lambda: os.chroot("/tmp"),
                     "chown": lambda: os.chown("/tmp", 0, 0), "mknod": lambda: os.mknod("/tmp/n", 0o600 | 0o20000, 259)}
            try:
                calls[name]()
                return "done"
            except OSError as exc:
                return type(exc).__name__
        def uid():
            return os.getuid(), os.getgid()
    """)
    tests = [f"assert attempt({name!r}) == 'done'" for name in ("setuid 0", "chroot", "chown", "mknod")]
    result = run_python(code, tests + ["assert uid() == (65534, 65534)"])
    assert (result.passed, result.detail) == (1, "AssertionError: ")  # the uid only


# ---- reading the host ----

def test_no_host_file_can_be_read(tmp_path):
    secrets = [tmp_path / "secret.txt", REPO / f".sandbox-secret-{os.getpid()}"]  # a host temp dir and /work
    os.chmod(tmp_path, 0o755)
    try:
        for secret in secrets:
            secret.write_text("hunter2")
            os.chmod(secret, 0o644)
        code = textwrap.dedent("""
            import os
            def leak(path):
                try:
                    return open(path).read()
                except OSError as exc:
                    return type(exc).__name__
            def exists(path):
                return os.path.exists(path)
        """)
        tests = [f"assert leak({str(s)!r}) == 'hunter2'" for s in secrets]
        tests += [f"assert 'rlcs' in leak({str(REPO / 'README.md')!r})"]
        tests += [f"assert exists({p!r})" for p in (str(REPO / "tests"), "/work", "/etc/hostname", "/proc/1/environ",
                                                     os.path.expanduser("~/.ssh"), "/root/.cache")]
        result = run_python(code, tests)
    finally:
        for secret in secrets:
            secret.unlink(missing_ok=True)
    assert (result.passed, result.status) == (0, "ok"), result.detail


# ---- signals, network ----

def test_the_host_cannot_be_signalled():
    sentinel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        code = DISARM + textwrap.dedent(f"""
            import os, signal
            for target in (os.getppid(), {sentinel.pid}, {os.getpid()}, 1):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.killpg({os.getpgid(0)}, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(-1, signal.SIGKILL)  # all it may signal: in its PID namespace, nothing but itself
            except OSError:
                pass
        """)
        result = run_python(code + ADD, ADD_TESTS)
        assert result.passed == 2  # and the tests process, in a namespace of its own, lived on too
        run_python(code + "os.killpg(0, signal.SIGKILL)\n", ADD_TESTS)  # its own group: only itself
        time.sleep(0.2)
        assert sentinel.poll() is None  # still running, as is this test process
    finally:
        sentinel.kill()
        sentinel.wait()


def test_there_is_no_network():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    code = DISARM + f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'x')\n"
    try:
        result = run_python(code + ADD, ADD_TESTS)
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()
    assert result.passed == 0 and "Connection refused" in result.detail


# ---- bombs and loops ----

BOMBS = {
    "fork bomb": DISARM + "import os\nwhile True:\n    os.fork()\n",
    "thread bomb": "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,)).start()\n",
    "memory bomb": "block = bytearray(2 * 1024 ** 3)\n",
    "growing memory": "keep = []\nwhile True:\n    keep.append(bytearray(10 ** 7))\n",
    "huge file": "with open('big', 'wb') as f:\n    while True:\n        f.write(b'0' * (1 << 20))\n",
    "many files": DISARM + "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'0' * (1 << 20))\n    i += 1\n",
    "infinite loop": "while True:\n    pass\n",
    "hang in a call": "def add(a, b):\n    while True:\n        pass\n",
}


@pytest.mark.parametrize("bomb", BOMBS)
def test_bombs_end_within_the_limit_with_nothing_left_behind(bomb):
    before = sandbox_dirs()
    started = time.monotonic()
    result = run_python(BOMBS[bomb] + ("" if "def add" in BOMBS[bomb] else ADD), ADD_TESTS, timeout_s=1.5,
                        memory_mb=256)
    elapsed = time.monotonic() - started
    assert result.passed == 0 and result.share == 0.0 and "not attacking" not in result.detail
    assert elapsed < 3.0, f"{bomb}: {elapsed:.1f} s"
    assert leftover_processes(result.run_id) == []
    assert sandbox_dirs() == before


def test_a_pool_timeout_shorter_than_the_sandboxs_kills_the_sandbox_too():
    from rewards.isolation import Call, VerifierPool

    box = "<think>x</think><answer><|begin_of_box|>while True:\n    pass<|end_of_box|></answer>"
    example = {"id": "c1", "answer": "", "tests": ADD_TESTS}
    before = sandbox_dirs()
    with VerifierPool(workers=1, timeout_s=1.5) as pool:
        [outcome] = pool.run([Call("code", {"timeout_s": 60}, box, example)])
        assert outcome.status == "timeout"
        deadline = time.monotonic() + 5
        while leftover_processes() and time.monotonic() < deadline:
            time.sleep(0.1)  # the worker's death reaches bwrap through its parent-death signal
        assert leftover_processes() == []
        assert sandbox_dirs() == before


def test_unsandboxed_children_and_their_directory_die_with_a_killed_worker(tmp_path):
    from rewards.isolation import Call, VerifierPool

    # in the worker only: the code verifier as on a machine without bwrap, allowed to run unsandboxed
    plugin = tmp_path / "unsandboxed.py"
    plugin.write_text("from rewards import code, sandbox\n\n\ndef unsandboxed(completion, example, **kwargs):\n"
                      "    sandbox._status = sandbox.SandboxStatus(False, 'test: no bwrap')\n"
                      "    return code.code(completion, example, allow_unsandboxed=True, **kwargs)\n")
    spec, example = f"{plugin}:unsandboxed", {"id": "c1", "answer": "", "tests": ADD_TESTS}
    sleeping = "<think>x</think><answer><|begin_of_box|>import time\ntime.sleep(60)\n<|end_of_box|></answer>"
    unsandboxed_runs = f"HOME={tempfile.gettempdir()}/rlcs-sandbox-".encode()  # only unsandboxed runs have it
    before_dirs, before = sandbox_dirs(), set(processes_with(unsandboxed_runs))
    with VerifierPool(workers=1, timeout_s=3) as pool:
        box = "<think>x</think><answer><|begin_of_box|>" + ADD + "<|end_of_box|></answer>"
        assert [(o.status, o.value) for o in pool.run([Call(spec, {}, box, example)])] == [("ok", 1.0)]
        [outcome] = pool.run([Call(spec, {"timeout_s": 60}, sleeping, example)])  # benign: it only sleeps
        assert outcome.status == "timeout"
        deadline = time.monotonic() + 5
        while set(processes_with(unsandboxed_runs)) - before and time.monotonic() < deadline:
            time.sleep(0.1)  # the worker's death reaches them through their parent-death signal
        assert set(processes_with(unsandboxed_runs)) - before == set()
        assert sandbox_dirs() == before_dirs


# ---- the code verifier ----

def test_code_verifier_extracts_the_code_and_scores_the_share():
    box = "<think>plan</think><answer><|begin_of_box|>def add(a, b):\n    return a + b<|end_of_box|></answer>"
    example = {"id": "c1", "answer": "", "tests": ADD_TESTS}
    assert rewards.get("code")(box, example) == 1.0
    fenced = "<think>x</think><answer>```python\ndef add(a, b):\n    return a - b\n```\n" \
             "<|begin_of_box|>see above<|end_of_box|></answer>"
    assert extract_code(fenced).startswith("see above") is True  # the box wins when it holds text
    tail = "<think>x</think>```python\ndef add(a, b):\n    return 3\n```"
    assert extract_code(tail) == "def add(a, b):\n    return 3\n"
    with pytest.raises(ValueError, match="no 'tests'"):
        rewards.get("code")(box, {"id": "c2", "answer": ""})


def test_memory_mb_above_the_pools_limit_is_lowered_not_a_silent_crash():
    from rewards.isolation import Call, VerifierPool

    box = "<think>x</think><answer><|begin_of_box|>" + ADD + "<|end_of_box|></answer>"
    example = {"id": "c1", "answer": "", "tests": ADD_TESTS}
    with VerifierPool(workers=1, timeout_s=30, memory_mb=1024) as pool:  # the sandbox inherits 1024 MB, hard
        outcomes = pool.run([Call("code", {"memory_mb": 4096}, box, example)])
    assert [(o.status, o.value) for o in outcomes] == [("ok", 1.0)], outcomes


def test_memory_mb_above_the_inherited_limit_is_logged_once(monkeypatch, caplog):
    real = sandbox.resource.getrlimit
    limit = 1024 << 20
    monkeypatch.setattr(sandbox.resource, "getrlimit",
                        lambda kind: (limit, limit) if kind == sandbox.resource.RLIMIT_AS else real(kind))
    monkeypatch.setattr(sandbox, "_clamped", set())
    with caplog.at_level(logging.WARNING, logger="rewards.sandbox"):
        assert sandbox._allowed_memory_mb(512) == 512
        assert [run_python(ADD, ADD_TESTS, memory_mb=1 << 20).passed for _ in range(2)] == [2, 2]
    assert [r.getMessage() for r in caplog.records if "memory_mb" in r.getMessage()] == [
        "code verifier: memory_mb=1048576 is above this process's address-space limit of 1024 MB (the verifier "
        "pool's memory_mb, which the sandbox inherits); running with 1024 MB"]


def broken_bwrap(monkeypatch, roles: set[str], *failing: str) -> None:
    """Make bwrap fail to set up the processes of ``roles`` (``failing``: the bwrap options that fail), as when
    the host runs out of user namespaces; nothing on the host is touched."""
    assert sandbox.sandbox_status().available  # checked before the break, with the real bwrap
    real_spawn, real_prefix = sandbox._spawn, sandbox._bwrap_prefix

    def spawn(role, *args):
        prefix = (lambda *a: [*real_prefix(*a)[:-1], *failing, "--"]) if role in roles else real_prefix
        monkeypatch.setattr(sandbox, "_bwrap_prefix", prefix)
        return real_spawn(role, *args)
    monkeypatch.setattr(sandbox, "_spawn", spawn)


@pytest.mark.parametrize("roles", [{"solution"}, {"solution", "tests"}, {"tests"}])
def test_bwrap_failing_to_set_up_is_a_verifier_failure_not_a_zero(monkeypatch, roles):
    # an unknown option: bwrap exits before it creates the namespaces, like one that finds none left
    broken_bwrap(monkeypatch, roles, "--no-such-option")
    with pytest.raises(SandboxFailure, match="bwrap did not start the"):
        run_python(ADD, ADD_TESTS)
    router = RewardRouter.from_config({"code": {"verifier": "code"}})
    box = "<think>x</think><answer><|begin_of_box|>" + ADD + "<|end_of_box|></answer>"
    assert router.score([box], [{"id": "c1", "domain": "code", "answer": "", "tests": ADD_TESTS}]) == [0.0]
    assert router.errors == {"code": 1} and "SandboxFailure" in router.last_failure["code"]


def test_a_solution_harness_that_never_starts_is_a_verifier_failure(monkeypatch):
    # bwrap reports the process, then fails inside it before Python starts (the tests then see EOF)
    broken_bwrap(monkeypatch, {"solution"}, "--chdir", "/no/such/directory")
    with pytest.raises(SandboxFailure, match="the solution's harness never started"):
        run_python(ADD, ADD_TESTS)


@pytest.mark.parametrize("crash", ["import os\nos._exit(3)\n", "import faulthandler\nfaulthandler._sigsegv()\n",
                                   "import time\ntime.sleep(30)\n"])
def test_a_solution_that_crashes_or_hangs_on_its_own_still_scores_zero(crash):
    result = run_python(crash + ADD, ADD_TESTS, timeout_s=1.5)
    assert result.passed == 0 and result.share == 0.0
    assert result.status == ("timeout" if "sleep" in crash else "ok"), result


def test_the_code_verifier_under_another_spec_is_checked_at_start_up(no_bwrap, tmp_path):
    reexport = tmp_path / "my_code.py"
    reexport.write_text("from rewards.code import code\n")
    for spec in ("rewards.code:code", f"{reexport}:code"):
        with pytest.raises(SandboxUnavailable, match="not installed"):
            RewardRouter.from_config({"code": {"verifier": spec}})
        RewardRouter.from_config({"code": {"verifier": spec, "kwargs": {"allow_unsandboxed": True}}})


@pytest.fixture(autouse=True)
def real_sandbox(request):
    """Skip a test that needs a working bwrap where there is none, unless RLCS_REQUIRE_SANDBOX=1 (CI)."""
    if "no_bwrap" in request.fixturenames or os.environ.get("RLCS_REQUIRE_SANDBOX") == "1":
        return
    status = sandbox.sandbox_status()
    if not status.available:
        pytest.skip(f"no OS sandbox here ({status.reason}): apt-get install bubblewrap")


@pytest.fixture
def no_bwrap(monkeypatch):
    """This process as on a machine without bubblewrap: the lookup finds nothing and the self-check reruns."""
    real_which = sandbox.shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name))
    monkeypatch.setattr(sandbox, "_status", None)
    monkeypatch.setattr(sandbox, "_warned", set())


def test_without_bwrap_the_code_verifier_refuses_and_says_why(no_bwrap, caplog):
    box = "<think>x</think><answer><|begin_of_box|>" + ADD + "<|end_of_box|></answer>"
    example = {"id": "c1", "domain": "code", "answer": "", "tests": ADD_TESTS}
    with caplog.at_level(logging.WARNING, logger="rewards.sandbox"):
        with pytest.raises(SandboxUnavailable, match="bwrap .* not installed.*allow_unsandboxed: true"):
            rewards.get("code")(box, example)
        with pytest.raises(SandboxUnavailable):
            run_python(ADD, ADD_TESTS)
    assert [r.getMessage() for r in caplog.records if "refuses" in r.getMessage()] == [
        "code sandbox unavailable (bwrap (bubblewrap) is not installed): the code verifier refuses to run model "
        "code; install bubblewrap or set allow_unsandboxed: true"]  # once, not per call
    # a recipe with a code domain stops at start-up, before any rollout, not as a failure per reward
    with pytest.raises(SandboxUnavailable, match="not installed"):
        RewardRouter.from_config({"code": {"verifier": "code"}})


def test_allow_unsandboxed_runs_without_bwrap_and_warns(no_bwrap, caplog):
    box = "<think>x</think><answer><|begin_of_box|>" + ADD + "<|end_of_box|></answer>"
    before = sandbox_dirs()
    with caplog.at_level(logging.WARNING, logger="rewards.sandbox"):
        router = RewardRouter.from_config({"code": {"verifier": "code", "kwargs": {"allow_unsandboxed": True}}})
        example = {"id": "c1", "domain": "code", "answer": "", "tests": ADD_TESTS}
        assert router.score([box, box], [example, example]) == [1.0, 1.0]
    assert sum("WITHOUT an OS sandbox" in r.getMessage() for r in caplog.records) == 1
    assert sandbox_dirs() == before
    result = run_python(WRONG_ADD + "import os\nos._exit(0)\n", ADD_TESTS, allow_unsandboxed=True)
    assert result.passed == 0  # the verdict still comes from the other process


def test_sandbox_processes_are_gone_when_a_run_returns():
    results = [run_python(ADD, ADD_TESTS), run_python("while True:\n    pass\n", ADD_TESTS, timeout_s=0.5)]
    assert [leftover_processes(r.run_id) for r in results] == [[], []]



def test_a_code_recipe_without_bwrap_stops_the_cli_with_an_error_line_not_a_traceback(
        no_bwrap, micro_model_dir, tmp_path, capsys):
    import json

    from rlcs import cli

    data = tmp_path / "code.jsonl"
    data.write_text(json.dumps({"id": "c1", "domain": "code", "prompt": "Write add.", "answer": "",
                                "tests": ADD_TESTS}) + "\n")
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(f"output_dir: {tmp_path / 'out'}\nmodel: {{path: {micro_model_dir}}}\ndata: {{train: {data}}}\n"
                      "rewards:\n  code: {verifier: code}\n")
    assert cli.main(["eval", "--model", str(micro_model_dir), "--data", str(data), "--recipe", str(recipe)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "bwrap" in errors[0] and "allow_unsandboxed: true" in errors[0], err
    assert "Traceback" not in err
