"""Loading the user's object from ``module:attr`` or ``path/to/file.py[:attr]``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from wireframe.cli.errors import UsageError


def load_object(
    spec: str, *, default_attrs: tuple[str, ...], accept: Callable[[object], bool], what: str
) -> object:
    """Import ``module:attr`` (or a ``.py`` file, with an optional ``:attr``) and return the object.

    Without ``:attr`` the first of ``default_attrs`` present is used, else the only module
    global that ``accept`` takes. A callable that is not itself accepted is called with no
    arguments (a factory). Every failure is a UsageError naming the spec.
    """
    target, attr = _split(spec)
    module = _import(target, spec)
    if attr is None:
        obj = _find(module, spec, default_attrs, accept, what)
    else:
        obj = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise UsageError(f"{spec!r}: {module.__name__} has no attribute {attr!r}") from None
    if not accept(obj) and callable(obj) and _takes_no_arguments(obj):
        obj = obj()
    if not accept(obj):
        raise UsageError(f"{spec!r} is {type(obj).__name__} {obj!r:.80}, not {what}")
    return obj


def _takes_no_arguments(fn: Callable[..., object]) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


def _split(spec: str) -> tuple[str, str | None]:
    if not spec:
        raise UsageError("app spec must not be empty; write module:attr or path/to/main.py")
    head, sep, tail = spec.rpartition(":")
    # `C:\path\main.py` has a drive colon; an attribute never contains a path separator.
    if sep and head and tail and "/" not in tail and "\\" not in tail:
        return head, tail
    return spec, None


def _import(target: str, spec: str) -> ModuleType:
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"{spec!r}: no such file {str(path)!r}")
        name = "__wireframe_app__"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(f"{spec!r}: cannot load {str(path)!r} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))
        module_spec.loader.exec_module(module)
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
            raise UsageError(f"{spec!r}: no module named {exc.name!r}") from None
        raise


def _find(
    module: ModuleType,
    spec: str,
    names: tuple[str, ...],
    accept: Callable[[object], bool],
    what: str,
) -> object:
    for name in names:
        if hasattr(module, name):
            return getattr(module, name)
    found = [name for name, value in vars(module).items() if accept(value)]
    if len(found) == 1:
        return getattr(module, found[0])
    if not found:
        raise UsageError(f"{spec!r}: found no {what} in {module.__name__}; write {spec}:name")
    raise UsageError(f"{spec!r}: several candidates ({', '.join(found)}); write {spec}:name")
