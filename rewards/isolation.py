"""Run verifier calls in worker processes, each call under a wall-clock limit.

A plain process pool cannot stop one hung task, so this is a small supervisor:
every worker takes one call at a time over a pipe; a call that overruns its
limit gets its worker killed (SIGKILL) and replaced, and the call is reported
as a timeout. A worker that dies (segfault, ``os._exit``, out of memory) is
replaced the same way, and so is one found dead when a call is handed to it.
Calls run in parallel across workers. Each worker's address space is capped
(``memory_mb``, default 2048): a verifier that runs away with memory gets a
MemoryError or dies, and its call is an error, not the machine's problem.

Killing a worker also ends what it started: the code sandbox's bubblewrap
runs with ``--die-with-parent``, so a pool timeout shorter than the sandbox's
takes the sandbox's process tree with it (it leaves no temporary directory:
its files live in a tmpfs of its own). Without bubblewrap (``allow_unsandboxed``)
the plain children carry a parent-death signal instead, and the pool removes
the killed worker's temporary directories (``remove_workdirs_of``).

The sandbox's processes inherit the worker's address-space limit and cannot
raise it: a code verifier asking for more ``memory_mb`` gets the pool's.

Workers resolve the verifier from its spec string (``rewards.get``, once per
spec per worker), so a spec must be resolvable in a fresh process: a built-in
name, ``module:fn``, ``file.py:fn`` or an entry point.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

from rewards.sandbox import remove_workdirs_of


@dataclass(frozen=True)
class Call:
    spec: str
    kwargs: dict
    completion: str
    example: dict


@dataclass(frozen=True)
class Outcome:
    value: float | None
    status: str  # "ok", "error" or "timeout"
    message: str = ""


def _serve(conn, memory_mb: int | None) -> None:
    import resource

    from rewards.registry import get

    if memory_mb is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resolved = {}
    while True:
        call = conn.recv()
        if call is None:
            return
        try:
            if call.spec not in resolved:
                resolved[call.spec] = get(call.spec)
            value = resolved[call.spec](call.completion, call.example, **call.kwargs)
            conn.send(("ok", None if value is None else float(value), ""))
        except BaseException as exc:  # noqa: BLE001 - anything a verifier raises is reported, never fatal
            conn.send(("error", None, f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, context, memory_mb: int | None):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.job: int | None = None
        self.started = 0.0

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()
        if not self.process.is_alive():  # its own clean-up never ran; its PID is not reused before it is reaped
            remove_workdirs_of(self.process.pid)


class VerifierPool:
    def __init__(self, workers: int = 2, timeout_s: float = 10.0, memory_mb: int | None = 2048):
        if workers < 1:
            raise ValueError("a verifier pool needs at least one worker")
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self.context = mp.get_context(method)
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self.workers = [_Worker(self.context, memory_mb) for _ in range(workers)]

    def run(self, calls: list[Call]) -> list[Outcome]:
        results: list[Outcome | None] = [None] * len(calls)
        pending = list(range(len(calls)))[::-1]
        while pending or any(w.job is not None for w in self.workers):
            for worker in list(self.workers):
                if worker.job is None and pending:
                    self._hand(worker, calls, pending.pop())
            busy = [w for w in self.workers if w.job is not None]
            next_deadline = min(w.started + self.timeout_s for w in busy)
            ready = wait([w.conn for w in busy], timeout=max(0.0, next_deadline - time.monotonic()))
            for worker in busy:
                if worker.conn in ready:
                    try:
                        status, value, message = worker.conn.recv()
                        results[worker.job] = Outcome(value, status, message)
                        worker.job = None
                    except (EOFError, OSError):
                        results[worker.job] = Outcome(None, "error", "verifier process died")
                        self._replace(worker)
                elif time.monotonic() >= worker.started + self.timeout_s:
                    results[worker.job] = Outcome(None, "timeout", f"no result within {self.timeout_s:g} s")
                    self._replace(worker)
        return results  # type: ignore[return-value]

    def _hand(self, worker: _Worker, calls: list[Call], job: int) -> None:
        """Give ``calls[job]`` to ``worker``, or to its replacement when it died while idle."""
        if not worker.process.is_alive():
            worker = self._replace(worker)
        try:
            worker.conn.send(calls[job])
        except (BrokenPipeError, ConnectionResetError, EOFError):  # it died between the check and the send
            worker = self._replace(worker)
            worker.conn.send(calls[job])
        worker.job, worker.started = job, time.monotonic()

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        fresh = _Worker(self.context, self.memory_mb)
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.kill()

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
