"""A plugin's own dependencies, checked when it loads.

The core installs no model family's libraries; each plugin declares them (as
an extra of its distribution) and calls ``require_modules`` in its
``register_tasks`` hook, so a missing library is one line in
``lorakit plugins`` that names the install command, not an ImportError in
the middle of a run.
"""

from __future__ import annotations

import importlib.util

from lorakit.errors import PluginError


def require_modules(modules: dict[str, str], install: str) -> None:
    """Raise ``PluginError`` unless every module in ``modules`` (import name ->
    distribution name) can be imported; the message says ``install``."""
    missing = sorted({dist for module, dist in modules.items() if importlib.util.find_spec(module) is None})
    if missing:
        raise PluginError(f"needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
                          f"{install}")
