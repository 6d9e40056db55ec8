"""aiogram's Telegram types, built on first use instead of at import.

aiogram declares about 470 pydantic models (every type and method of the Bot API)
with `defer_build`, then rebuilds them all at the end of `aiogram.types` to resolve
their forward references, which builds every validator and serializer at once: about
80 MiB of the process for types the bot never sees. `install()` (run when
`bot.channels` is imported, before aiogram) leaves those models deferred: the names
that import would have resolved them with are kept and given to each model when it is
first validated or serialised, which builds that model and the ones it contains.
Models of any other package are untouched."""

from __future__ import annotations

from typing import Any

_namespace: dict[str, Any] = {}
_shared = False
_installed = False


def _aiogram(cls: type) -> bool:
    return cls.__module__.startswith("aiogram.")


def _subclasses(root: type) -> list[type]:
    found, stack = [], [root]
    while stack:
        for sub in stack.pop().__subclasses__():
            found.append(sub)
            stack.append(sub)
    return found


def install() -> None:
    """Patch pydantic's `BaseModel.model_rebuild` for aiogram's models (once)."""
    global _installed
    if _installed:
        return
    try:
        from pydantic import BaseModel
        from pydantic._internal._model_construction import unpack_lenient_weakvaluedict
    except ImportError:  # another pydantic: aiogram builds its models as it always did
        return
    original = BaseModel.__dict__["model_rebuild"].__func__

    def share_namespace() -> None:
        """Give every deferred aiogram model the names of aiogram.types."""
        global _shared
        _shared = True
        for model in _subclasses(BaseModel):
            if _aiogram(model) and not model.__pydantic_complete__:
                own = unpack_lenient_weakvaluedict(model.__pydantic_parent_namespace__) or {}
                model.__pydantic_parent_namespace__ = {**_namespace, **own}

    def model_rebuild(
        cls: Any,
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Any = None,
    ) -> bool | None:
        if _aiogram(cls):
            if _types_namespace is not None and not force and cls.model_config.get("defer_build"):
                _namespace.update(_types_namespace)  # aiogram.types at import: later
                return None
            if not cls.__pydantic_complete__ and _namespace:
                if not _shared:
                    share_namespace()
                _types_namespace = {**_namespace, **(_types_namespace or {})}
        return original(
            cls,
            force=force,
            raise_errors=raise_errors,
            _parent_namespace_depth=_parent_namespace_depth + 1,
            _types_namespace=_types_namespace,
        )

    BaseModel.model_rebuild = classmethod(model_rebuild)  # type: ignore[method-assign,assignment]
    _installed = True
