"""Finding a Hugging Face base: the plugin's demo folder, a local folder, or a hub id.

Shared by the plugins whose bases are transformers models: the same rules
for ``--base`` everywhere, the architecture checked from ``config.json``
before any weight is read (a checkpoint of another head loads with random
layers and no warning), and one error that says what to pass instead.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lorakit.errors import BaseModelError
from lorakit.torch_files import refusal

#: What to do about a base whose .bin weights hold more than tensors.
PICKLED_BASE_FIX = ("re-save the model from a trusted copy with model.save_pretrained(folder), which writes plain "
                    "tensors (safetensors)")


@dataclass(frozen=True)
class BaseKind:
    """What a task accepts as ``--base``.

    ``label`` names the model in messages ("BLIP VQA model"); ``architecture``
    is the transformers class name in ``config.json``; ``demo`` is the demo
    folder and ``rebuild`` the command that rebuilds it; ``example`` is a hub
    id users know; ``hint`` is added when another architecture is given.
    """

    label: str
    model_type: str
    architecture: str
    demo: Path
    rebuild: str
    example: str
    hint: str = ""

    def choices(self) -> str:
        return (f"Pass --base demo (the bundled tiny {self.label}), a local folder with config.json written by "
                f"save_pretrained, or a hub id such as {self.example} that is cached or reachable online")


def base_source(name: str, kind: BaseKind) -> str:
    """Where to load ``name`` from: the demo folder, a local folder, or a hub id."""
    if name == "demo":
        if not (kind.demo / "config.json").is_file():
            raise BaseModelError(f"the demo base is missing from {kind.demo}; rebuild it: {kind.rebuild}")
        return str(kind.demo)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelError(f"{path} has no config.json; --base takes a folder written by save_pretrained, "
                                 f"a hub id such as {kind.example}, or demo")
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BaseModelError(f"--base {name}: no such model folder. {kind.choices()}")
    return name


@contextlib.contextmanager
def _quiet_local_load(source: str) -> Iterator[None]:
    """Without transformers' "Loading weights" tqdm line for a local folder
    (it printed beside lorakit's own bars); a hub id keeps its download bars,
    unless the hub client is offline (nothing is downloaded then)."""
    from huggingface_hub import constants

    if not Path(source).is_dir() and not constants.is_offline_mode():
        yield
        return
    with transformers_bars_off():
        yield


@contextlib.contextmanager
def transformers_bars_off() -> Iterator[None]:
    """transformers' own tqdm bars ("Loading weights", "Writing model shards")
    off while the block runs: they would print beside lorakit's own output."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    if not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def check_architecture(name: str, source: str, kind: BaseKind) -> None:
    """Refuse a model of another type or head before loading its weights."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise load_error(name, error, kind) from error
    architectures = getattr(config, "architectures", None) or []
    if config.model_type != kind.model_type or (architectures and kind.architecture not in architectures):
        found = ", ".join(architectures) or config.model_type
        raise BaseModelError(f"--base {name} is a {found}, not a {kind.label} ({kind.architecture}); "
                             f"use e.g. {kind.example}" + (f", {kind.hint}" if kind.hint else ""))


def offline_check(name: str, kind: BaseKind) -> None:
    """For a hub id: offline mode when the Hub does not answer, and at once
    the error of a model that is then not in the local cache."""
    from huggingface_hub import try_to_load_from_cache

    from lorakit.hub_offline import offline_miss, offline_unless_reachable

    try:
        cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError as not_an_id:  # a name the hub could not hold either
        raise load_error(name, not_an_id, kind) from None
    reason = offline_unless_reachable(name, cached)
    if reason is not None and not cached:
        raise BaseModelError(f"cannot load the base {name!r}: {offline_miss(name, reason)}. {kind.choices()}")


def load_error(name: str, error: Exception, kind: BaseKind) -> BaseModelError:
    """The error of a base that cannot be read, with what to pass instead."""
    first_line = str(error).splitlines()[0] if str(error) else ""
    return BaseModelError(f"cannot load the base {name!r} ({error.__class__.__name__}: {first_line}). {kind.choices()}")


def load_pretrained(name: str, kind: BaseKind, model_class: Any, processor_class: Any) -> tuple[Any, Any, dict]:
    """The model (float32) and processor of ``name``, its architecture checked
    first; also the loading info (``missing_keys``...) for checks of one's own."""
    import pickle

    import torch
    from safetensors import SafetensorError

    source = base_source(name, kind)
    if not Path(source).is_dir():
        offline_check(name, kind)
    check_architecture(name, source, kind)
    try:
        with _quiet_local_load(source):
            model, info = model_class.from_pretrained(source, dtype=torch.float32, output_loading_info=True)
            processor = processor_class.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise load_error(name, error, kind) from error
    except pickle.UnpicklingError as refused:  # a .bin checkpoint that torch's weights_only loading refused
        pickles = sorted(Path(source).glob("*.bin")) if Path(source).is_dir() else []
        where = ", ".join(map(str, pickles)) or f"the weights of --base {name}"
        raise BaseModelError(refusal(where, refused, PICKLED_BASE_FIX)) from None
    except SafetensorError as damaged:  # truncated or overwritten weights
        files = sorted(Path(source).glob("*.safetensors")) if Path(source).is_dir() else []
        where = ", ".join(map(str, files)) or f"the weights of --base {name}"
        raise BaseModelError(f"{where}: not a complete safetensors file ({damaged}); copy the base folder again "
                             "from its source") from None
    return model, processor, info
