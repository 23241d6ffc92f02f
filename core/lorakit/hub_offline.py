"""Hub offline mode when the Hugging Face Hub cannot be reached.

Loading a hub id asks the Hub about every file of the model, and
huggingface_hub retries each request five times (1 + 2 + 4 + 8 + 8 s) before
it falls back to its cache: a cached BLIP took 4.5 minutes to load on a
machine without network, every command, with a screen of "Retrying in 8s"
lines. One short request tells lorakit first; where it fails, the process
switches to huggingface_hub's offline mode (as ``HF_HUB_OFFLINE=1`` does), so
a cached model loads at once and a missing one fails at once, saying so.
"""

from __future__ import annotations

import os

_asked = False  # the Hub is asked once per process...
_failure: str | None = None  # ...and why it gave no answer is kept for the loads and errors that follow


def offline_unless_reachable(name: str, cached: bool = True) -> str | None:
    """Before hub id ``name`` is loaded: None when the Hub answers, else why
    it is not used. When it gives no answer, offline mode goes on for this
    process and a warning says so (unless ``name`` is known not to be
    ``cached``: its error says it then). With ``HF_HUB_OFFLINE`` set by the
    user nothing is asked."""
    global _asked, _failure
    from huggingface_hub import constants

    if not _asked:
        if constants.is_offline_mode():
            return "is off (HF_HUB_OFFLINE is set)"
        _asked = True
        _failure = _probe(constants.ENDPOINT, constants.HF_HUB_ETAG_TIMEOUT)
        if _failure is not None:
            constants.HF_HUB_OFFLINE = True
            os.environ["HF_HUB_OFFLINE"] = "1"  # decoding workers and other child processes too
    if _failure is None:
        return None
    if cached:
        from lorakit.data.files import warn

        warn(f"{name}: the Hugging Face Hub ({constants.ENDPOINT}) does not answer ({_failure}); loading from "
             "the local hub cache only (set HF_HUB_OFFLINE=1 to skip this check)")
    return f"does not answer from this machine ({_failure})"


def _probe(endpoint: str, timeout: float) -> str | None:
    """Why one request to ``endpoint`` got no answer, or None when it got
    one (any status: a server that answers can serve files or say why not)."""
    from huggingface_hub import get_session

    try:
        get_session().head(endpoint, timeout=timeout)
    except Exception as error:  # noqa: BLE001  (whatever the transport raised, no answer came)
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no answer'}"[:200]
    return None


def offline_miss(name: str, reason: str) -> str:
    """What to do about hub id ``name``, not in the local cache, while the
    Hub is not used (``reason`` from offline_unless_reachable)."""
    from huggingface_hub import constants

    return (f"{name} is not in the local hub cache ({constants.HF_HUB_CACHE}) and the Hugging Face Hub {reason}: "
            f"download it where the Hub answers (`hf download {name}`) and copy the cache here (or point "
            "HF_HUB_CACHE at it)")
