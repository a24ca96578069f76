"""Lazy re-exports: a job package names its job's ``run`` without importing Ray or torch on import;
a name that moved stays importable from its old module for one release (:func:`moved`).

Every job package (``archive_colorizer/<job>/``) re-exports ``run`` and its result class from
``<job>/job.py``. Importing the package (as ``<job>/config.py`` does, for ``--help``) must stay
cheap, so the names are resolved on first access (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def reexports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that resolves ``names`` (attribute -> submodule of ``package``) lazily.

    Args:
        package: the package's ``__name__``.
        names: e.g. ``{"run": "job", "ColorizeResult": "job"}``.

    Returns:
        The function to assign to the package's ``__getattr__``; it raises ``AttributeError``
        for any other name, as a module does.
    """

    def __getattr__(name: str) -> Any:
        submodule = names.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{submodule}"), name)

    return __getattr__


def moved(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that moved elsewhere: each resolves, with a ``DeprecationWarning``.

    Args:
        module: the old module's ``__name__``.
        names: attribute -> the module that holds it now (absolute name).

    Returns:
        The function to assign to the old module's ``__getattr__``; other names raise
        ``AttributeError``.
    """

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} moved to {target}.{name}; the old path goes away in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(target), name)

    return __getattr__
