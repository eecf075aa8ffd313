"""Run untrusted Python (model output) against tests, in a separate, limited process.

Layers, each independent of the others:
- a new process in its own session, killed with its whole process group at the
  wall-clock limit;
- rlimits: CPU seconds, address space (memory), size of any file written,
  open files, and, when not root, the number of processes;
- a private temporary directory as the working directory and HOME, removed after;
- when started as root: a fresh network namespace (no interfaces), and the
  process drops to user ``nobody`` when the interpreter and its standard
  library are readable by other users (not so for a Python under /root);
- inside, a CPython audit hook refuses process creation (fork, exec, spawn,
  subprocess, os.system), sockets, ctypes/native loading, and any write,
  delete or rename outside the directory.
The process runs Python in isolated mode (``-I``) with a minimal environment.

The sandbox protects the machine, not the score: solution and tests share one
interpreter, so a solution written to tamper with the harness could fake
passes. Keep tests the model cannot see.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534
_HARNESS = r'''
import json, os, sys
nonce = sys.stdin.readline().strip()
sys.stdin.close()
root = os.path.realpath(os.getcwd())
BLOCKED = ("os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.kill",
           "subprocess.Popen", "socket.connect", "socket.bind", "socket.socket", "ctypes.dlopen",
           "ctypes.dlsym", "ctypes.cdata", "pty.spawn", "os.startfile", "sys.addaudithook")
def inside(path):
    try:
        path = os.fsdecode(path) if not isinstance(path, int) else None
    except TypeError:
        return True
    return path is None or os.path.realpath(os.path.join(root, path)).startswith(root + os.sep)
def guard(event, args):
    if event in BLOCKED:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open" and len(args) > 1 and args[1] is not None:
        mode = args[1] if isinstance(args[1], str) else ""
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writing = any(c in mode for c in "wax+") or (flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing and not inside(args[0]):
            raise PermissionError(f"sandbox: writing outside the sandbox directory: {args[0]!r}")
    if event in ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
                 "os.link", "os.truncate", "shutil.rmtree", "shutil.move", "shutil.copyfile"):
        if not all(inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
            raise PermissionError(f"sandbox: {event} outside the sandbox directory")
tests = json.load(open("tests.json"))
source = open("solution.py").read()
sys.addaudithook(guard)
namespace = {"__name__": "__solution__"}
passed, error = 0, ""
try:
    exec(compile(source, "solution.py", "exec"), namespace)
    for test in tests:
        try:
            exec(compile(test, "test", "exec"), namespace)
            passed += 1
        except BaseException as exc:
            error = error or f"{type(exc).__name__}: {exc}"[:300]
except BaseException as exc:
    error = f"{type(exc).__name__}: {exc}"[:300]
sys.stdout.write("\n" + nonce + json.dumps({"passed": passed, "error": error}) + "\n")
sys.stdout.flush()
os._exit(0)
'''


@dataclass(frozen=True)
class SandboxResult:
    passed: int
    total: int
    status: str  # "ok", "timeout", "crashed"
    detail: str = ""

    @property
    def share(self) -> float:
        return self.passed / self.total if self.total else 0.0


def _usable_by_others(path: str) -> bool:
    """Whether a user with no rights of its own can reach and read ``path``."""
    real = Path(os.path.realpath(path))
    if any(not (os.stat(parent).st_mode & 0o001) for parent in real.parents):
        return False
    return (os.stat(real).st_mode & 0o005) == 0o005


def can_drop_to_nobody() -> bool:
    return _usable_by_others(sys.executable) and _usable_by_others(os.__file__)


def _limits(cpu_s: int, memory_mb: int, file_mb: int, as_root: bool, drop: bool):
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if as_root:
            try:  # no network: a new, empty network namespace
                import ctypes

                ctypes.CDLL(None, use_errno=True).unshare(0x40000000)  # CLONE_NEWNET
            except (OSError, AttributeError):
                pass
        if drop:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        resource.setrlimit(resource.RLIMIT_NPROC, (16, 16))  # counts per user: meaningful once not root
    return apply


def run_python(code: str, tests: list[str], timeout_s: float = 5.0, memory_mb: int = 512,
               file_mb: int = 8) -> SandboxResult:
    directory = tempfile.mkdtemp(prefix="rlcs-sandbox-")
    as_root = os.geteuid() == 0
    drop = as_root and can_drop_to_nobody()
    try:
        Path(directory, "solution.py").write_text(code)
        Path(directory, "tests.json").write_text(json.dumps(list(tests)))
        Path(directory, "harness.py").write_text(_HARNESS)
        if drop:
            os.chown(directory, NOBODY, NOBODY)
            for name in ("solution.py", "tests.json", "harness.py"):
                os.chown(Path(directory, name), NOBODY, NOBODY)
        nonce = secrets.token_hex(16)
        stdout_path = Path(directory, ".stdout")
        with open(stdout_path, "wb") as stdout:
            process = subprocess.Popen(
                [sys.executable, "-I", "harness.py"], cwd=directory, stdin=subprocess.PIPE, stdout=stdout,
                stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "HOME": directory, "LANG": "C.UTF-8"},
                preexec_fn=_limits(max(1, int(timeout_s) + 1), memory_mb, file_mb, as_root, drop),
            )
            try:
                process.stdin.write((nonce + "\n").encode())
                process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return SandboxResult(0, len(tests), "timeout", f"no result within {timeout_s:g} s")
        _kill_group(process)  # anything it left behind
        output = stdout_path.read_bytes()[-4096:].decode(errors="replace")
        for line in reversed(output.splitlines()):
            if line.startswith(nonce):
                report = json.loads(line[len(nonce):])
                return SandboxResult(int(report["passed"]), len(tests), "ok", report["error"])
        return SandboxResult(0, len(tests), "crashed", f"exit status {process.returncode}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
