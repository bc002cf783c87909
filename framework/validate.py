"""Check a composed config against the constructors it will call, before anything is built or trained.

Every node with a ``_target_`` is checked against its target's signature: an unknown key (a misspelt
``trainer.max_epoch``), a value of the wrong type (``data.batch_size=abc``) or out of a declared range
(``levels: PositiveInt``) is a one-line :class:`UserError` naming the key and what is allowed. Types and
ranges come from the constructor's annotations (checked with pydantic), so a new model or DataModule is
validated with no schema to write; an optimizer factory is tried on a dummy parameter, so its own checks
run too. Whatever else a constructor refuses is reported when it is built (``framework.runner.instantiate``).
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import pydantic
import torch
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from framework.errors import UserError

_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
# pydantic's error types for a value outside a declared range (``PositiveInt``, ``Annotated[float, Ge(0)]``)
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _signature(target: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    function = target.__init__ if inspect.isclass(target) else target  # type: ignore[misc]
    try:
        parameters = dict(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return {}, {}, True
    parameters.pop("self", None)
    open_ended = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # unresolvable annotations: check names only
        hints = {}
    return parameters, hints, open_ended


def _plain(value: Any) -> Any:
    return (
        OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value
    )


def _builds_objects(value: Any) -> bool:
    if isinstance(value, DictConfig):
        return "_target_" in value or any(_builds_objects(v) for v in value.values())
    if isinstance(value, ListConfig):
        return any(_builds_objects(v) for v in value)
    return False


def _type_name(annotation: Any) -> str:
    """What a user reads: ``int`` for ``PositiveInt`` (``Annotated[int, Gt(0)]``), ``float | None`` for an
    optional bounded float; the bound itself is reported by its own message."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("collections.abc.", "")


def _check_type(key: str, value: Any, annotation: Any) -> None:
    if _builds_objects(value):
        return  # objects built by Hydra: each is checked on its own
    try:
        pydantic.TypeAdapter(
            annotation, config=pydantic.ConfigDict(arbitrary_types_allowed=True)
        ).validate_python(_plain(value), strict=False)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        if first["type"] in _BOUNDS:
            bound = next(iter(first.get("ctx", {}).values()), "?")
            raise UserError(
                f"{key}={_plain(value)!r} is impossible: it must be {_BOUNDS[first['type']]} {bound}"
            ) from None
        raise UserError(
            f"{key}={_plain(value)!r} has the wrong type: expected {_type_name(annotation)}"
        ) from None
    except (pydantic.PydanticSchemaGenerationError, TypeError, NameError):
        return  # a type pydantic cannot check (e.g. nn.Module): the constructor will


def validate_node(node: DictConfig, path: str) -> None:
    target_name = node.get("_target_")
    try:
        target = get_object(target_name)
    except Exception:
        raise UserError(f"{path}._target_={target_name} cannot be imported: check the class path") from None
    parameters, hints, open_ended = _signature(target)
    for key in node:
        if key in _HYDRA_KEYS:
            continue
        full_key = f"{path}.{key}" if path else str(key)
        if key not in parameters:
            if open_ended or not parameters:
                continue
            close = difflib.get_close_matches(str(key), parameters, n=1)
            hint = f" (did you mean {path}.{close[0]}?)" if close else ""
            raise UserError(f"{full_key} is not an argument of {target_name}{hint}")
        value = node._get_node(key)._value() if OmegaConf.is_missing(node, key) else node[key]
        if OmegaConf.is_missing(node, key):
            raise UserError(f"{full_key} must be set: add {full_key}=<value> to the command line")
        if key in hints:
            _check_type(full_key, value, hints[key])
    if node.get("_partial_") and inspect.isclass(target) and issubclass(target, torch.optim.Optimizer):
        _try_optimizer(node, path, target)


def _try_optimizer(node: DictConfig, path: str, target: type[torch.optim.Optimizer]) -> None:
    """Let an optimizer's own constructor check its settings (a negative learning rate …) on a dummy
    parameter now, rather than when the fit starts, after the data has loaded."""
    kwargs = {k: _plain(v) for k, v in node.items() if k not in _HYDRA_KEYS}
    try:
        target([torch.zeros(1, requires_grad=True)], **kwargs)
    except (ValueError, TypeError) as error:
        raise UserError(f"{path}: {error}") from None


def validate_config(cfg: DictConfig) -> None:
    """Walk ``cfg`` and validate every ``_target_`` node (interpolations resolved)."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, DictConfig):
            if "_target_" in node:
                validate_node(node, path)
            for key in node:
                if not OmegaConf.is_missing(node, key):
                    walk(node[key], f"{path}.{key}" if path else str(key))
        elif isinstance(node, ListConfig):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")

    for group in ("data", "module", "trainer", "callbacks", "logger"):
        if group in cfg and cfg[group] is not None:
            walk(cfg[group], group)
