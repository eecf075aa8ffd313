"""Run untrusted Python (model output) against tests: an OS sandbox for the code, a verdict it cannot reach.

Every run starts two processes, joined only by pipes the host creates:

- the *solution* process runs the completion's code, then answers requests about what it defined: call
  this, get that attribute, iterate. It sends back plain data (None, bool, int, float, complex, str, bytes,
  list, tuple, set, dict) or a handle to any other object;
- the *tests* process runs the example's test snippets. Each name the solution defines is a proxy there
  that asks the solution process; ``assert``, ``==`` and the rest of a test run in the tests process, on
  plain data decoded by type (nothing received is evaluated). A handle answers calls, attribute reads,
  iteration and its truth value (``bool`` is computed by the solution and comes back as a plain bool), and
  refuses ``==`` and ``!=`` (TypeError): an object that claims to equal anything gets no say, and one that
  differs from everything does not pass ``!=`` by identity either. A builtin's name
  always means the builtin there, and a standard module's name only that module (the tests process's own
  copy). Only the tests process holds the pipe the verdict leaves on.

So printing a result line, exiting early, or patching ``assert``/``unittest``/``math.isclose`` changes
nothing: the solution can only answer the calls the tests make, and the share is clamped to [0, 1].

Each process runs under bubblewrap (``bwrap``), checked once per process by a self-test run:
- a private mount namespace holding only the Python runtime (its prefix and the system libraries,
  read-only) and a private tmpfs as the working directory and HOME (``file_mb`` in size); no host home,
  no repository, no data;
- no network (an empty network namespace), its own PID, IPC and UTS namespaces, uid/gid 65534;
- a seccomp filter: no new processes (``clone`` only for threads; fork, vfork, clone3 refused) and no
  ptrace, mount, namespace, keyring or bpf calls;
- rlimits: CPU seconds, address space, file size, open files, no core files;
- ``--die-with-parent``; and when the verdict is in or the wall-clock limit passes, the host kills each PID
  namespace's first process (the kernel then ends everything in it) and waits for bwrap, so nothing of a
  run outlives it;
- inside the solution process, a CPython audit hook refusing process creation, sockets, ctypes and
  writes outside its directory (defence in depth: it is what is left in the unsandboxed mode).
Without a working ``bwrap`` runs are refused (``SandboxUnavailable``) unless the caller passes
``allow_unsandboxed=True``: then both processes run as plain children with the rlimits, the audit hook, a
parent-death signal and a private temporary directory, and nothing else: the solution runs as the tests
process's user and can forge the verdict, so that mode is for trusted code only. A failure of the harness
itself (bwrap cannot set a process up, the solution's harness never starts) raises ``SandboxFailure``
rather than scoring 0. See docs/rewards.md, "Sandbox threat model".

This file is also the program both sandboxed processes run (``python -I -S -c <this source> <role>``), so
everything above ``# Host side`` uses the standard library only.
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import struct
import sys
import types

MAX_MESSAGE = 16 << 20  # bytes; a larger message is refused, so a huge answer cannot exhaust the tests process
_FRAME = struct.Struct(">I")
_SCALARS = (type(None), bool, int, float, str)
_SEQUENCES = {"tuple": tuple, "set": set, "frozenset": frozenset}
_MUTABLE = (list, dict, set)  # argument types whose in-place changes the solution sends back
# standard modules the tests process will not import on a solution's word (side effects on import)
_NOT_IMPORTED = frozenset({"antigravity", "this", "__hello__", "__phello__", "idlelib", "turtledemo", "turtle",
                           "tkinter"})


# ---- wire format (both processes) ----

def _send(fd: int, message: object) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    view = memoryview(_FRAME.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the channel")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> object:
    (size,) = _FRAME.unpack(_read_exactly(fd, _FRAME.size))
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes is over the {MAX_MESSAGE}-byte limit")
    return json.loads(_read_exactly(fd, size))


def _encode(value: object, other) -> object:
    """JSON for plain data, by exact type (a subclass of int is not an int here); ``other(value)`` for the rest."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [_encode(item, other) for item in value]
    if kind in (tuple, set, frozenset):
        return {"t": kind.__name__, "v": [_encode(item, other) for item in value]}
    if kind is dict:
        return {"t": "dict", "v": [[_encode(k, other), _encode(v, other)] for k, v in value.items()]}
    if kind is bytes:
        return {"t": "bytes", "v": value.hex()}
    if kind is complex:
        return {"t": "complex", "v": [value.real, value.imag]}
    return other(value)


def _decode(data: object, handle) -> object:
    """The inverse of ``_encode``; ``handle(index)`` for a handle. Anything malformed raises ValueError."""
    kind = type(data)
    if kind in _SCALARS:
        return data
    if kind is list:
        return [_decode(item, handle) for item in data]
    if kind is not dict or set(data) != {"t", "v"}:
        raise ValueError("malformed value")
    tag, body = data["t"], data["v"]
    if tag in _SEQUENCES and type(body) is list:
        return _SEQUENCES[tag](_decode(item, handle) for item in body)
    if tag == "dict" and type(body) is list and all(type(p) is list and len(p) == 2 for p in body):
        return {_decode(k, handle): _decode(v, handle) for k, v in body}
    if tag == "bytes" and type(body) is str:
        return bytes.fromhex(body)
    if tag == "complex" and type(body) is list and len(body) == 2 and all(type(x) is float for x in body):
        return complex(*body)
    if tag == "handle" and type(body) is int:
        return handle(body)
    if tag == "module" and type(body) is str:
        return _standard_module(body)
    raise ValueError(f"malformed value tagged {tag!r}")


def _standard_module(name: str) -> types.ModuleType:
    """A standard-library module, imported here: a solution's ``import math`` reaches the tests as the real
    ``math``, so a test that uses it without importing it still works and a patched copy never counts."""
    parts = name.split(".")
    if parts[0] not in sys.stdlib_module_names or parts[0] in _NOT_IMPORTED or "__main__" in parts:
        raise ValueError(f"not a standard module the tests may use: {name!r}")
    return importlib.import_module(name)


def _describe(exc: BaseException) -> list:
    return [type(exc).__name__, str(exc)[:300]]


def _limit_self(limits: dict) -> None:
    """rlimits on this process, hard and soft: without CAP_SYS_RESOURCE nothing it runs can raise them.

    No RLIMIT_NPROC: it does not bind host uid 0 (what the sandbox is when root starts it), and for any other
    user it counts all of that user's processes and threads, so it would refuse threads too. Seccomp refuses
    new processes instead; threads are bounded by the address space (each reserves a stack)."""
    import resource

    memory, size = limits["memory_mb"] << 20, limits["file_mb"] << 20
    for kind, value in ((resource.RLIMIT_CPU, limits["cpu_s"]), (resource.RLIMIT_AS, memory),
                        (resource.RLIMIT_FSIZE, size), (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0)):
        hard = resource.getrlimit(kind)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # an inherited hard limit cannot be raised: asking would raise ValueError
        resource.setrlimit(kind, (value, value))


# ---- the solution process ----

_BLOCKED_EVENTS = frozenset({
    "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg",
    "subprocess.Popen", "socket.__new__", "socket.connect", "socket.bind", "ctypes.dlopen", "ctypes.dlsym",
    "ctypes.cdata", "pty.spawn", "sys.addaudithook"})
_PATH_EVENTS = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
                          "os.link", "os.truncate", "shutil.rmtree", "shutil.move", "shutil.copyfile"})


def _audit_guard(root: str):
    def inside(path) -> bool:
        if isinstance(path, int):
            return True  # an fd it already holds
        try:
            real = os.path.realpath(os.path.join(root, os.fsdecode(path)))
        except TypeError:
            return True
        return real == root or real.startswith(root + os.sep)

    def guard(event: str, args: tuple) -> None:
        if event in _BLOCKED_EVENTS:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open" and len(args) > 2 and args[1] is not None:
            mode = args[1] if isinstance(args[1], str) else ""
            flags = args[2] if isinstance(args[2], int) else 0
            writing = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if writing and not inside(args[0]):
                raise PermissionError(f"sandbox: writing outside the sandbox directory: {args[0]!r}")
        if event in _PATH_EVENTS and not all(inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
            raise PermissionError(f"sandbox: {event} outside the sandbox directory")
    return guard


def _serve_solution(requests: int, replies: int, started: int) -> None:
    source = sys.stdin.buffer.read().decode("utf-8", "replace")
    sys.stdin.close()
    # to the host, before any model code runs: proof the harness came up, so a run without a verdict or without
    # a "ready" is the solution's doing, not the sandbox's (nothing the code does later can take this back)
    os.write(started, b"1")
    os.close(started)
    objects: list = []

    def to_handle(value: object) -> dict:
        if isinstance(value, types.ModuleType):
            return {"t": "module", "v": value.__name__}
        objects.append(value)
        return {"t": "handle", "v": len(objects) - 1}

    def from_handle(index: int) -> object:
        if not 0 <= index < len(objects):
            raise ValueError(f"no object {index}")
        return objects[index]

    sys.addaudithook(_audit_guard(os.path.realpath(os.getcwd())))
    namespace = {"__name__": "__solution__", "__builtins__": builtins}
    try:
        exec(compile(source, "solution.py", "exec"), namespace)
        names = {name: _encode(value, to_handle) for name, value in namespace.items() if not name.startswith("__")}
        _send(replies, ["ready", names])
    except BaseException as exc:  # noqa: BLE001 - whatever the code raised is the tests' to report
        _send(replies, ["raise", *_describe(exc)])
        return
    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return
        try:
            _send(replies, _answer(request, from_handle, to_handle))
        except BaseException as exc:  # noqa: BLE001
            _send(replies, ["raise", *_describe(exc)])


def _answer(request, from_handle, to_handle) -> list:
    kind, target = request[0], from_handle(request[1])
    if kind == "call":
        args = [_decode(a, from_handle) for a in request[2]]
        kwargs = {str(k): _decode(v, from_handle) for k, v in request[3].items()}
        value = target(*args, **kwargs)
        changed = {str(i): a for i, a in enumerate(args) if type(a) in _MUTABLE}
        changed.update({k: v for k, v in kwargs.items() if type(v) in _MUTABLE})
        return ["ok", _encode(value, to_handle), {k: _encode(v, to_handle) for k, v in changed.items()}]
    if kind == "getattr":
        return ["ok", _encode(getattr(target, str(request[2])), to_handle), {}]
    if kind == "iter":
        return ["ok", _encode(iter(target), to_handle), {}]
    if kind == "next":
        return ["ok", _encode(next(target), to_handle), {}]
    if kind == "bool":
        return ["ok", bool(target), {}]  # bool() itself insists that __bool__ returns a bool
    raise ValueError(f"unknown request {kind!r}")


# ---- the tests process ----

class SolutionError(Exception):
    """The solution raised an exception that is not a built-in one (its type name and message)."""


class _Channel:
    def __init__(self, requests: int, replies: int):
        self.requests, self.replies = requests, replies

    def receive(self) -> list:
        reply = _receive(self.replies)
        if type(reply) is not list or not reply or reply[0] not in ("ok", "ready", "raise"):
            raise ValueError("malformed reply from the solution process")
        if reply[0] == "raise":
            _raise_as_solution(*reply[1:3])
        return reply

    def ask(self, kind: str, index: int, *rest) -> object:
        _send(self.requests, [kind, index, *rest])
        _, value, changed = self.receive()
        return self.decode(value), changed

    def decode(self, data: object) -> object:
        return _decode(data, lambda index: _Remote(self, index))

    def encode(self, value: object) -> object:
        def other(item: object) -> dict:
            if isinstance(item, _Remote) and item._channel is self:
                return {"t": "handle", "v": item._index}
            if isinstance(item, types.ModuleType):
                return {"t": "module", "v": item.__name__}
            raise TypeError(f"a test can pass plain data or the solution's own objects to it, not {type(item)}")
        return _encode(value, other)


def _raise_as_solution(name: object, message: object) -> None:
    kind = getattr(builtins, str(name), None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            error = kind(str(message))
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError wants five arguments
            error = None
        if error is not None:
            raise error
    raise SolutionError(f"{name}: {message}")


class _Remote:
    """An object of the solution's, seen from the tests. Calls, attribute reads, iteration and the truth value
    are asked of the solution process. ``==`` and ``!=`` raise TypeError: forwarding them would let an object
    that equals everything pass, and the identity fallback would make ``assert f(x) != y`` always pass."""

    __slots__ = ("_channel", "_index")

    def __init__(self, channel: _Channel, index: int):
        self._channel, self._index = channel, index

    def __call__(self, *args, **kwargs):
        encoded = [self._channel.encode(a) for a in args]
        named = {k: self._channel.encode(v) for k, v in kwargs.items()}
        value, changed = self._channel.ask("call", self._index, encoded, named)
        for key, data in dict(changed).items():  # in-place changes to list, dict and set arguments
            original = args[int(key)] if key.isdigit() and int(key) < len(args) else kwargs.get(key)
            new = self._channel.decode(data)
            if type(original) is type(new) is list:
                original[:] = new
            elif type(original) is type(new) and type(new) in (dict, set):
                original.clear()
                original.update(new)
        return value

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._channel.ask("getattr", self._index, name)[0]

    def __iter__(self):
        return self._channel.ask("iter", self._index)[0]

    def __next__(self):
        return self._channel.ask("next", self._index)[0]

    def __bool__(self) -> bool:
        value = self._channel.ask("bool", self._index)[0]
        if type(value) is not bool:
            raise TypeError("the solution process sent a truth value that is not a bool")
        return value

    def __eq__(self, other: object) -> bool:
        raise TypeError("a solution object cannot be compared with == (compare plain data it returns)")

    def __ne__(self, other: object) -> bool:
        raise TypeError("a solution object cannot be compared with != (compare plain data it returns)")

    __hash__ = object.__hash__  # defining __eq__ would otherwise make handles unhashable

    def __repr__(self) -> str:
        return f"<solution object {self._index}>"


def _solution_names(channel: _Channel, names: dict) -> dict:
    """What the tests see of the solution's names. Never a builtin's name (a solution's ``len = lambda x: 3``
    would pass ``assert len(f()) == 3``), and a standard module's name only as that module, the tests
    process's own copy (a solution's ``math = Fake()`` would pass ``assert math.isclose(...)``)."""
    seen = {}
    for name, value in names.items():
        name = str(name)
        if name.startswith("__") or hasattr(builtins, name):
            continue
        decoded = channel.decode(value)
        if name in sys.stdlib_module_names and not isinstance(decoded, types.ModuleType):
            continue
        seen[name] = decoded
    return seen


def _run_tests(replies: int, requests: int, verdict: int) -> None:
    tests = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    channel = _Channel(requests, replies)
    passed, error = 0, ""
    try:
        _, names = channel.receive()
        namespace = {"__name__": "__tests__", "__builtins__": builtins}
        namespace.update(_solution_names(channel, names))
    except BaseException as exc:  # noqa: BLE001
        namespace, error = None, "the solution did not load: {}: {}".format(*_describe(exc))
    for index, test in enumerate(tests if namespace is not None else []):
        try:
            exec(compile(test, f"<test {index}>", "exec"), namespace)
            passed += 1
        except BaseException as exc:  # noqa: BLE001 - a failing test is a result, not a crash
            error = error or "{}: {}".format(*_describe(exc))
    _send(verdict, {"passed": passed, "error": error})


def _child(argv: list[str]) -> None:
    role, limits, fds = argv[0], json.loads(argv[1]), [int(fd) for fd in argv[2:]]
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # integers compare exactly at any size
    _limit_self(limits)
    if role == "solution":
        _serve_solution(*fds)
    else:
        _run_tests(*fds)


if __name__ == "__main__":  # only as the sandboxed program; the host imports this module
    _child(sys.argv[1:])
    sys.exit(0)


# ---- Host side ----

import logging  # noqa: E402 - host-only imports, kept out of the sandboxed processes' start-up
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import secrets  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import cache  # noqa: E402
from pathlib import Path  # noqa: E402

log = logging.getLogger(__name__)
SANDBOX_UID = 65534  # nobody
RUN_ENV = "RLCS_SANDBOX_RUN"  # set to the run id in every process of a run
WORKDIR_PREFIX = "rlcs-sandbox-"  # unsandboxed runs' temporary directories: rlcs-sandbox-<host pid>-<random>
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class SandboxResult:
    passed: int
    total: int
    status: str  # "ok", "timeout", "crashed"
    detail: str = ""
    run_id: str = ""  # RLCS_SANDBOX_RUN in the environment of the run's processes

    @property
    def share(self) -> float:
        return min(1.0, max(0.0, self.passed / self.total)) if self.total else 0.0


@dataclass(frozen=True)
class SandboxStatus:
    available: bool
    reason: str  # why not, or what runs it


class SandboxUnavailable(RuntimeError):
    """No OS sandbox here, and the caller did not allow running model code without one."""


class SandboxFailure(RuntimeError):
    """The harness itself failed (bwrap could not set a process up, the solution's harness never started, no
    verdict with no sign the solution ran): raised, so callers count a verifier failure instead of a 0."""


def run_python(code: str, tests: list[str], timeout_s: float = 5.0, memory_mb: int = 512, file_mb: int = 8,
               allow_unsandboxed: bool = False) -> SandboxResult:
    """Run ``code``, then score it on ``tests`` (Python snippets, typically ``assert`` statements that call what
    the code defines) within ``timeout_s`` of wall-clock time in all."""
    sandboxed = require_sandbox(allow_unsandboxed)
    return _run(code, [str(t) for t in tests], timeout_s, _allowed_memory_mb(memory_mb), file_mb, sandboxed)


_clamped: set[tuple[int, int]] = set()


def _allowed_memory_mb(memory_mb: int) -> int:
    """``memory_mb``, or less where this process's hard address-space limit (a verifier pool worker's
    ``memory_mb``) is lower: the sandboxed processes inherit that limit and cannot raise it (logged once)."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard == resource.RLIM_INFINITY or memory_mb << 20 <= hard:
        return memory_mb
    allowed = hard >> 20
    if (memory_mb, allowed) not in _clamped:
        _clamped.add((memory_mb, allowed))
        log.warning("code verifier: memory_mb=%d is above this process's address-space limit of %d MB (the "
                    "verifier pool's memory_mb, which the sandbox inherits); running with %d MB",
                    memory_mb, allowed, allowed)
    return allowed


def require_sandbox(allow_unsandboxed: bool = False) -> bool:
    """True when runs are sandboxed; False when they are not but the caller allows that (logged once);
    otherwise ``SandboxUnavailable`` naming the reason."""
    status = sandbox_status()
    if status.available:
        return True
    _warn_once(status.reason, allow_unsandboxed)
    if not allow_unsandboxed:
        raise SandboxUnavailable(f"no OS sandbox for model code: {status.reason}. Install bubblewrap "
                                 "(apt-get install bubblewrap), or set allow_unsandboxed: true in the code "
                                 "verifier's kwargs to run it without one")
    return False


_status: SandboxStatus | None = None
_warned: set[tuple[str, bool]] = set()


def sandbox_status() -> SandboxStatus:
    """Whether bwrap is here and passes a self-test run (checked once per process)."""
    global _status
    if _status is None:
        _status = _self_check()
        if _status.available:
            log.info("code sandbox: %s", _status.reason)
    return _status


def _warn_once(reason: str, allowed: bool) -> None:
    if (reason, allowed) in _warned:
        return
    _warned.add((reason, allowed))
    if allowed:
        log.warning("code sandbox unavailable (%s): running model code WITHOUT an OS sandbox, because "
                    "allow_unsandboxed is true", reason)
    else:
        log.warning("code sandbox unavailable (%s): the code verifier refuses to run model code; install "
                    "bubblewrap or set allow_unsandboxed: true", reason)


def _self_check() -> SandboxStatus:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return SandboxStatus(False, "bwrap (bubblewrap) is not installed")
    if _seccomp_filter() is None:
        return SandboxStatus(False, f"no seccomp filter for the {platform.machine()} architecture")
    # the probe must run, as uid 65534, without this file (the host's tree) in sight
    probe = f"import os\ndef probe():\n    return os.getuid(), os.path.exists({str(Path(__file__).resolve())!r})\n"
    with tempfile.TemporaryFile() as stderr:
        try:
            result = _run(probe, [f"assert probe() == ({SANDBOX_UID}, False)"], 30.0, 256, 1, True, stderr)
        except (OSError, SandboxFailure) as exc:
            return SandboxStatus(False, f"bwrap could not start: {exc}")
        stderr.seek(0)
        said = stderr.read()[-500:].decode(errors="replace").strip()
    if (result.passed, result.status) != (1, "ok"):
        return SandboxStatus(False, f"the bwrap self-test failed ({result.status}: {result.detail} {said})".strip())
    return SandboxStatus(True, f"{bwrap}, uid {SANDBOX_UID}, no network, seccomp, interpreter {_interpreter()}")


@dataclass
class _Child:
    process: subprocess.Popen
    info: int | None = None  # bwrap's --info-fd, which names the PID namespace's first process
    inner_pid: int | None = None


def _run(code: str, tests: list[str], timeout_s: float, memory_mb: int, file_mb: int, sandboxed: bool,
         stderr=subprocess.DEVNULL) -> SandboxResult:
    run_id = secrets.token_hex(8)
    deadline = time.monotonic() + timeout_s
    limits = json.dumps({"cpu_s": math.ceil(timeout_s) + 1, "memory_mb": memory_mb, "file_mb": file_mb})
    # the worker's PID in the name: a pool that kills this worker mid-run removes it (remove_workdirs_of)
    workdir = None if sandboxed else tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
    to_solution, from_solution, verdict, started = os.pipe(), os.pipe(), os.pipe(), os.pipe()
    open_fds = {*to_solution, *from_solution, *verdict, *started}
    children: list[_Child] = []
    try:
        def spawn(role: str, stdin: bytes, fds: tuple[int, ...]) -> None:
            children.append(_spawn(role, stdin, fds, limits, file_mb, sandboxed, run_id, workdir, stderr))

        spawn("solution", code.encode(errors="replace"), (to_solution[0], from_solution[1], started[1]))
        spawn("tests", json.dumps(tests).encode(), (from_solution[0], to_solution[1], verdict[1]))
        for fd in (*to_solution, *from_solution, verdict[1], started[1]):  # the children hold these now
            os.close(fd)
            open_fds.discard(fd)
        report, timed_out = _read_verdict(verdict[0], deadline)
    finally:
        for child in children:  # both trees, whether they finished or not
            _stop(child, deadline)
        _sweep(run_id)
        # b"1" if the solution's harness came up; polled, never waited for (a stray holder of the write end,
        # or a spawn that failed with the host's copy still open, must not hang this call)
        solution_ran = bool(select.select([started[0]], [], [], 0)[0]) and bool(os.read(started[0], 1))
        for fd in open_fds:
            os.close(fd)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    if not timed_out:  # a run that merely ran out of time is the solution's (a hang), whatever else is missing
        codes = ", ".join(f"{role} {c.process.returncode}" for role, c in zip(("solution", "tests"), children))
        not_set_up = [role for role, c in zip(("solution", "tests"), children) if sandboxed and c.inner_pid is None]
        if not_set_up:
            raise SandboxFailure(f"bwrap did not start the {' and '.join(not_set_up)} process (exit statuses "
                                 f"{codes}); e.g. no user namespaces left")
        if not solution_ran:
            raise SandboxFailure(f"the solution's harness never started (exit statuses {codes})")
    if report is None:
        if timed_out:
            return SandboxResult(0, len(tests), "timeout", f"no result within {timeout_s:g} s", run_id)
        codes = ", ".join(str(c.process.returncode) for c in children)
        return SandboxResult(0, len(tests), "crashed", f"no verdict (exit statuses {codes})", run_id)
    passed = min(max(int(report.get("passed", 0)), 0), len(tests))
    return SandboxResult(passed, len(tests), "ok", str(report.get("error", ""))[:300], run_id)


def _spawn(role: str, stdin: bytes, fds: tuple[int, ...], limits: str, file_mb: int, sandboxed: bool, run_id: str,
           workdir: str | None, stderr) -> _Child:
    held = [_memfd(role, stdin)]
    info = None
    try:
        command = [_interpreter(), "-I", "-S", "-c", _program(), role, limits, *map(str, fds)]
        env = {RUN_ENV: run_id, "LANG": "C.UTF-8"}
        if sandboxed:
            held.append(_memfd("seccomp", _seccomp_filter()))
            info, info_w = os.pipe()
            held.append(info_w)
            command = [*_bwrap_prefix(file_mb, run_id, held[1], info_w), *command]
        else:
            env.update(PATH="/usr/bin:/bin", HOME=workdir)
        # Under bwrap: a session of its own (bwrap's --die-with-parent ends it with this process). Without bwrap:
        # a process group of its own, so _stop can kill what it started, but this session and a parent-death
        # signal, so a pool that kills this worker mid-run kills these children too.
        detach = ({"start_new_session": True} if sandboxed
                  else {"preexec_fn": _die_with(os.getpid())})
        process = subprocess.Popen(command, stdin=held[0], stdout=subprocess.DEVNULL, stderr=stderr,
                                   pass_fds=(*fds, *held[1:]), cwd=workdir or "/", env=env, **detach)
        return _Child(process, info)
    except BaseException:
        if info is not None:
            os.close(info)
        raise
    finally:
        for fd in held:
            os.close(fd)


def _die_with(parent: int):
    """A ``preexec_fn``: a process group of its own (for ``_stop``; ``process_group=`` needs Python 3.11), and
    SIGKILL when ``parent`` (the thread that forks it) dies (Linux)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        os.setpgid(0, 0)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)
    return preexec


def remove_workdirs_of(pid: int) -> None:
    """Remove the unsandboxed runs' temporary directories of process ``pid``, once it is dead (a verifier pool
    calls this for a worker it killed: the worker's own clean-up never ran)."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}{pid}-*"):
        shutil.rmtree(path, ignore_errors=True)


def _read_verdict(fd: int, deadline: float) -> tuple[dict | None, bool]:
    """(the tests process's report or None, whether the deadline passed first)."""
    data = b""
    while True:
        if len(data) >= _FRAME.size and len(data) >= _FRAME.size + _FRAME.unpack(data[:_FRAME.size])[0]:
            try:
                report = json.loads(data[_FRAME.size:])
            except ValueError:
                return None, False
            return (report if isinstance(report, dict) else None), False
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None, True
        chunk = os.read(fd, 1 << 16)
        if not chunk or len(data) > 1 << 20:
            return None, False
        data += chunk


def _stop(child: _Child, deadline: float) -> None:
    """Kill a run's process tree and wait until none of it is left.

    Under bwrap the PID namespace's first process is killed: the kernel then kills everything in the namespace
    and lets that process be reaped only once all are gone, and bwrap outside exits after reaping it, so its
    exit means the tree is gone. The process group is the fallback, and the only means without bwrap."""
    if child.info is not None:
        child.inner_pid = _inner_pid(child.info, deadline)
        os.close(child.info)
    if child.inner_pid is not None and child.process.poll() is None:
        _kill_child_of(child.process.pid, child.inner_pid)
        try:
            child.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(child.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.process.wait()


def _sweep(run_id: str, limit_s: float = 5.0) -> None:
    """Kill and wait out any process still carrying this run's marker. ``_stop`` ends the trees it knows
    of; a namespace torn down by the kernel after its first process died (bwrap killed through the
    process group, or gone first) can still be exiting then, and a call must not return before its
    processes are gone."""
    needle = f"{RUN_ENV}={run_id}".encode()
    give_up = time.monotonic() + limit_s
    while True:
        alive = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                pidfd = os.pidfd_open(int(entry))
            except OSError:
                continue  # gone meanwhile, or not ours to see
            try:  # the marker is read after the pidfd pins the process, so a reused PID is never signalled
                if needle in Path(f"/proc/{entry}/environ").read_bytes():
                    alive.append(entry)
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(pidfd)
        if not alive or time.monotonic() > give_up:
            return
        time.sleep(0.01)


def _inner_pid(info: int, deadline: float) -> int | None:
    """The host PID of the namespace's first process, from bwrap's --info-fd (written once set up, then closed)."""
    data = b""
    while select.select([info], [], [], max(0.0, min(1.0, deadline - time.monotonic())))[0]:
        chunk = os.read(info, 4096)
        if not chunk:
            break
        data += chunk
    try:
        return int(json.loads(data)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None


def _kill_child_of(parent: int, pid: int) -> None:
    """SIGKILL ``pid`` only while it is still ``parent``'s child: a pidfd pins the process, then its parent is
    checked, so a PID reused by an unrelated process after ours was reaped is never signalled."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return  # already gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
    finally:
        os.close(pidfd)


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(f"rlcs-{name}")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@cache
def _program() -> str:
    return Path(__file__).read_text()


@cache
def _interpreter() -> str:
    """The real interpreter binary, not a venv's link to it: the sandbox holds the base installation only."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


@cache
def _runtime_binds() -> tuple[str, ...]:
    """bwrap arguments that mount the Python runtime read-only at the same paths: the interpreter's prefix and
    the system libraries it links (not /usr/bin, so there is no shell unless the prefix is /usr)."""
    args: list[str] = []
    for top in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
    wanted = [sys.base_prefix, sys.base_exec_prefix, os.path.dirname(_interpreter()),
              "/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32"]
    mounted: list[str] = []
    for path in sorted({os.path.realpath(p) for p in wanted}):
        if os.path.isdir(path) and not any(path == m or path.startswith(m + os.sep) for m in mounted):
            mounted.append(path)
            args += ["--ro-bind", path, path]
    return tuple(args)


def _bwrap_prefix(file_mb: int, run_id: str, seccomp_fd: int, info_fd: int) -> list[str]:
    return [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), *_runtime_binds(),
            "--dev", "/dev", "--remount-ro", "/dev", "--size", str(file_mb << 20), "--tmpfs", "/tmp",
            "--remount-ro", "/", "--chdir", "/tmp", "--clearenv", "--setenv", "HOME", "/tmp",
            "--setenv", "LANG", "C.UTF-8", "--setenv", RUN_ENV, run_id, "--seccomp", str(seccomp_fd),
            "--info-fd", str(info_fd), "--"]


# seccomp: per architecture, (AUDIT_ARCH, clone, syscalls refused with EPERM). clone3 is refused with ENOSYS so
# the C library falls back to clone, whose flags a filter can read: threads (CLONE_THREAD) pass, processes not.
_SYSCALLS = {
    "x86_64": (0xC000003E, 56, {57, 58, 101, 135, 155, 161, 165, 166, 248, 249, 250, 272, 298, 308, 310, 311, 321,
                                323, 425, 428, 429, 430, 431, 432, 433, 442}),
    "aarch64": (0xC00000B7, 220, {39, 40, 41, 51, 92, 97, 117, 217, 218, 219, 241, 268, 270, 271, 280, 282, 425,
                                  428, 429, 430, 431, 432, 433, 442}),
}
_CLONE3, _CLONE_THREAD, _X32_BIT = 435, 0x00010000, 0x40000000
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, ..., BPF_RET|K
_ALLOW, _KILL, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000


@cache
def _seccomp_filter() -> bytes | None:
    """A classic-BPF seccomp program for this machine, or None for an architecture not listed."""
    machine = platform.machine()
    if machine not in _SYSCALLS:
        return None
    arch, clone, refused = _SYSCALLS[machine]
    eperm, enosys = _ERRNO | 1, _ERRNO | 38
    program = [(_LD, 0, 0, 4), (_JEQ, 1, 0, arch), (_RET, 0, 0, _KILL),  # another ABI (i386 on x86_64): killed
               (_LD, 0, 0, 0)]  # the syscall number
    if machine == "x86_64":
        program += [(_JGE, 0, 1, _X32_BIT), (_RET, 0, 0, enosys)]  # the x32 ABI's numbers
    for number in sorted(refused):
        program += [(_JEQ, 0, 1, number), (_RET, 0, 0, eperm)]
    program += [(_JEQ, 0, 1, _CLONE3), (_RET, 0, 0, enosys),
                (_JEQ, 0, 3, clone), (_LD, 0, 0, 16),  # clone's flags: the low word of its first argument
                (_JSET, 1, 0, _CLONE_THREAD), (_RET, 0, 0, eperm), (_RET, 0, 0, _ALLOW)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
