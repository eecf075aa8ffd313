"""Find a reward function by name.

A spec is a registered name (``"numeric"``), ``package.module:fn``,
``path/to/file.py:fn``, or the name of an entry point in the group
``rlcs.rewards``. A reward function is ``fn(completion: str, example: Mapping,
**kwargs) -> float | None`` (None: not applicable to this example).

A file is executed once per process (later specs naming it, by any path, get
the same module), as a module whose folder is first on ``sys.path`` while it
runs, so it can import the modules beside it, and last afterwards (imports it
makes later still find its neighbours, but a ``utils.py`` or ``config.py``
beside it does not shadow the trainer's own modules); ``@register`` in it runs
once. Two entry
points of the same name that point at different functions are an error naming
both.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

RewardFn = Callable[..., "float | None"]
_REGISTRY: dict[str, RewardFn] = {}
_FILES: dict[Path, object] = {}  # resolved path -> its module, so a file runs once per process
ENTRY_POINT_GROUP = "rlcs.rewards"


class RewardSpecError(ValueError):
    """A reward spec that cannot be resolved; the message names the spec."""


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    def decorate(fn: RewardFn) -> RewardFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise RewardSpecError(f"a reward named {name!r} is already registered ({_REGISTRY[name]!r})")
        _REGISTRY[name] = fn
        return fn

    return decorate


def get(spec: str) -> RewardFn:
    _load_builtins()
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if ":" in spec:
        target, _, attr = spec.rpartition(":")
        module = _load_file(target) if target.endswith(".py") else _import(target, spec)
        fn = getattr(module, attr, None)
        if not callable(fn):
            raise RewardSpecError(f"reward spec {spec!r}: {target} has no callable {attr!r}")
        return fn
    found = {entry.value: entry for entry in entry_points(group=ENTRY_POINT_GROUP) if entry.name == spec}
    if len(found) > 1:
        named = " and ".join(f"{value} (from {getattr(found[value].dist, 'name', '?')})" for value in sorted(found))
        raise RewardSpecError(f"two entry points are named {spec!r} in group {ENTRY_POINT_GROUP}: {named}")
    if found:
        return next(iter(found.values())).load()
    known = sorted(_REGISTRY) + sorted(e.name for e in entry_points(group=ENTRY_POINT_GROUP))
    raise RewardSpecError(f"unknown reward {spec!r}; registered: {known}; or use 'module:fn' / 'file.py:fn'")


def _import(module_name: str, spec: str):
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise RewardSpecError(f"reward spec {spec!r}: cannot import {module_name}: {exc}") from exc


def _load_file(path: str):
    file = Path(path)
    if not file.is_file():
        raise RewardSpecError(f"reward file not found: {path}")
    file = file.resolve()
    if file in _FILES:
        return _FILES[file]
    folder = str(file.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)  # as when a script runs: the modules beside it come first for its imports
    # a name per file, so two files with one stem stay apart; in sys.modules, so pickling and dataclasses work
    name = f"rlcs_reward_file_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    module_spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        if added:  # last from now on: still found by its lazy imports, never before the process's own modules
            sys.path.remove(folder)
            sys.path.append(folder)
    _FILES[file] = module
    return module


def _load_builtins() -> None:
    from rewards import (  # noqa: F401 - importing registers them
        choice,
        code,
        exact,
        format_check,
        grounding,
        gui,
        judge,
        math_verifier,
        numeric,
        ocr,
    )
