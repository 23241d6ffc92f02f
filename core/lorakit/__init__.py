"""lorakit: LoRA adapters for models that are not chat LLMs.

Plugins import from ``lorakit.api`` (the declared, versioned plugin API);
the most used names are also here: ``hookimpl``, ``Task``, ``Base``, ``Data``,
``TaskOptions``, ``LorakitError`` and ``CONTRACT_VERSION``.
"""

import logging
import warnings

from lorakit.errors import LorakitError
from lorakit.hookspecs import hookimpl
from lorakit.task import CONTRACT_VERSION, Base, Data, Task, TaskOptions

__version__ = "0.1.0"

# peft reads transformers' deprecated `is_gradient_checkpointing` whenever it
# wraps a model; the FutureWarning is about peft's code, not the user's.
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
# bitsandbytes (imported by peft when installed) warns on CPUs with AVX512-BF16
# that its optional `kernels` package is missing: that only speeds up 4-bit
# layers on a CPU, which lorakit refuses (a 4-bit base needs CUDA).
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
# Offline (HF_HUB_OFFLINE, or lorakit's check finding no Hub), the same
# import reaches `kernels`, which says it skips its publisher check for that
# CPU kernel: the same optional speed-up, one line on every command.
logging.getLogger("kernels._internals.hf_hub").setLevel(logging.ERROR)

__all__ = ["hookimpl", "Task", "Base", "Data", "TaskOptions", "LorakitError", "CONTRACT_VERSION", "__version__"]
