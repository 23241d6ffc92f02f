"""Reading a ``.pt``/``.pth`` file a user hands lorakit: tensors only, never code.

``torch.load(weights_only=True)`` refuses a pickle that would build other
objects (and so could run code); this turns its multi-paragraph refusal,
whose advice is to load the file unsafely, into one line that says what to do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lorakit.errors import DataError, LorakitError

RESAVE = "re-save the checkpoint's state_dict with plain tensors: torch.save(model.state_dict(), path)"


def load_tensors(path: Path, error: type[LorakitError] = DataError, fix: str = RESAVE) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; when the file is
    missing, unreadable or holds anything but tensors and plain containers,
    ``error`` says so in one line, ending with ``fix``."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of a file it is about to refuse anyway.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise error(f"{path} does not exist") from None
    except pickle.UnpicklingError as refused:
        raise error(refusal(path, refused, fix)) from None
    except OSError as unreadable:
        raise error(f"{path} cannot be read ({unreadable.strerror or unreadable}); check the file") from None
    except Exception:  # noqa: BLE001
        # A truncated zip is a RuntimeError, an empty file an EOFError, plain text a KeyError; random
        # bytes read as pickle opcodes fail in any of a dozen ways (IndexError, TypeError, struct.error...).
        raise error(f"{path} is not a PyTorch file (corrupt, truncated or another format); {fix}") from None


def refusal(path: Path | str, refused: Exception, fix: str = RESAVE) -> str:
    """The one-line message for ``path``, which ``torch.load(weights_only=True)``
    refused with ``refused`` (an ``UnpicklingError``)."""
    code = re.search(r"GLOBAL (\S+)", str(refused))
    if code:
        return (f"{path} holds code or Python objects ({code.group(1)}) that lorakit will not load, as loading "
                f"them could run code; {fix}")
    # A plain pickle (protocol 4+) is refused before torch sees what it holds.
    return (f"{path} is not a PyTorch file of plain tensors (it may be another kind of pickle, which can hold "
            f"code or Python objects); lorakit will not load it; {fix}")
