"""lorakit: LoRA adapters for models that are not chat LLMs.

The public API a plugin uses: ``hookimpl``, ``Task``, ``Base``, ``TaskOptions``
and the errors in ``lorakit.errors``.
"""

import pluggy

from lorakit.errors import LorakitError
from lorakit.task import CONTRACT_VERSION, Base, Task, TaskOptions

__version__ = "0.1.0"

#: Marks a plugin's hook implementations: ``@lorakit.hookimpl``.
hookimpl = pluggy.HookimplMarker("lorakit")

__all__ = ["hookimpl", "Task", "Base", "TaskOptions", "LorakitError", "CONTRACT_VERSION", "__version__"]
