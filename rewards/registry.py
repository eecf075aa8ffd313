"""Find a reward function by name.

A spec is a registered name (``"numeric"``), ``package.module:fn``,
``path/to/file.py:fn``, or the name of an entry point in the group
``rlcs.rewards``. A reward function is ``fn(completion: str, example: Mapping,
**kwargs) -> float | None`` (None: not applicable to this example).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

RewardFn = Callable[..., "float | None"]
_REGISTRY: dict[str, RewardFn] = {}
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
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == spec:
            return entry.load()
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
    module_spec = importlib.util.spec_from_file_location(f"rlcs_user_reward_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
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
