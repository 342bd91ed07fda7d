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
    spec: str,
    *,
    default_attrs: tuple[str, ...],
    accept: Callable[[object], bool],
    what: str,
    made_by: tuple[type, ...] = (),
) -> object:
    """Import ``module:attr`` (or a ``.py`` file, with an optional ``:attr``) and return the object.

    Without ``:attr`` the first of ``default_attrs`` present is used, else the only module
    global that ``accept`` takes, else the only function of the module that takes no arguments
    and is annotated to return one of ``made_by`` (a factory such as ``def build_service() ->
    Service``). A callable that is not itself accepted is called with no arguments (a factory).
    Every failure is a UsageError naming the spec.
    """
    target, attr = _split(spec)
    module = _import(target, spec)
    if attr is None:
        obj = _find(module, spec, default_attrs, accept, what, made_by)
    else:
        obj = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise UsageError(f"{spec!r}: {_where(module)} has no attribute {attr!r}") from None
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
        name = _FILE_MODULE
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


_FILE_MODULE = "__wireframe_app__"
"""The name a file given by path is imported under (its `__main__` block does not run)."""


def _where(module: ModuleType) -> str:
    """How to name a module to the user: its file for a file given by path, else its name."""
    if module.__name__ == _FILE_MODULE and module.__file__:
        relative = os.path.relpath(module.__file__)
        return module.__file__ if relative.startswith("..") else relative
    return module.__name__


def _find(
    module: ModuleType,
    spec: str,
    names: tuple[str, ...],
    accept: Callable[[object], bool],
    what: str,
    made_by: tuple[type, ...],
) -> object:
    for name in names:
        if hasattr(module, name):
            return getattr(module, name)
    found = [name for name, value in vars(module).items() if accept(value)]
    if not found and made_by:
        found = [
            name for name, value in vars(module).items() if _factory_of(value, module, made_by)
        ]
    if len(found) == 1:
        return getattr(module, found[0])
    where = _where(module)
    if not found:
        factory = f" or a function `def build() -> {made_by[0].__name__}`" if made_by else ""
        kinds = what.removeprefix("a ")
        named = " or ".join(names[:2])
        raise UsageError(
            f"{spec!r}: {where} has no {kinds} (a global named {named}{factory}); write {spec}:name"
        )
    raise UsageError(
        f"{spec!r}: {where} has several candidates ({', '.join(found)}); write {spec}:name"
    )


def _factory_of(value: object, module: ModuleType, made_by: tuple[type, ...]) -> bool:
    """Whether `value` is a function of `module` taking no arguments, annotated to return one
    of `made_by`."""
    if not inspect.isfunction(value) or value.__module__ != module.__name__:
        return False
    if not _takes_no_arguments(value):
        return False
    try:
        returns = inspect.signature(value, eval_str=True).return_annotation
    except Exception:  # an annotation that does not resolve: not a factory we can tell
        return False
    return isinstance(returns, type) and issubclass(returns, made_by)
