"""The plugin API: everything a plugin may import from lorakit, in one place.

    from lorakit.api import Task, Base, Data, TaskOptions, hookimpl, DataError

This module, ``lorakit.testing`` (the conformance kit) and the names
``lorakit`` re-exports are the contract that ``CONTRACT_VERSION`` versions: a
name listed in ``__all__`` keeps its meaning within a major version, and a
plugin importing any other ``lorakit`` module relies on internals that may
change in any release. Importing this module does not import torch.
"""

from lorakit.atomic import atomic_dir, atomic_write_bytes, atomic_write_text
from lorakit.capabilities import (CommandLineInputs, MergedExport, OptimizerGroup, PredictsInParts, SeveralOptimizers,
                                  WritesSamples)
from lorakit.data.audio import (
    AUDIO_FORMATS,
    AUDIO_SUFFIXES,
    TRANSCRIPTS_FILE,
    AudioSettings,
    load_audio,
    normalize_loudness,
    pauses,
    prepare_folder,
    print_rejected,
    read_transcripts,
    rejected_note,
    speech_frames,
    trim_silence,
)
from lorakit.data.hf_datasets import (ImportSummary, Split, choose_column, choose_media_column, import_options,
                                      import_split, media_columns, open_split)
from lorakit.data.files import list_files, read_jsonl, read_text, require_folder, resolve_member, warn
from lorakit.data.images import (IMAGE_SUFFIXES, MAX_PIXELS, Opened, check_image, image_stem, is_image, load_images,
                                 open_rgb)
from lorakit.demo import pretrain_on_tensors
from lorakit.errors import (
    AdapterError,
    BaseModelError,
    ConfigError,
    DataError,
    LorakitError,
    OutputError,
    PluginError,
    TrainingError,
)
from lorakit.cache import cache_root
from lorakit.fingerprints import file_fingerprint, fingerprint
from lorakit.locking import exclusive_lock
from lorakit.hookspecs import hookimpl
from lorakit.hub import BaseKind, load_pretrained
from lorakit.hub_offline import offline_unless_reachable
from lorakit.listening import write_mel_png, write_wav
from lorakit.device import inference_device, main_process_first
from lorakit.modeling import adapter_disabled, device_and_dtype, eval_mode, inner_model, seeded, to_device, unwrap
from lorakit.options import number, text, whole_number
from lorakit.progress import console, escape, rate_progress, work_progress
from lorakit.requirements import require_modules
from lorakit.torch_files import load_tensors
from lorakit.task import CONTRACT_VERSION, Base, Data, Task, TaskOptions
from lorakit.apply import AdapterSpec, open_with_adapters, parse_adapter, read_adapters

__all__ = [
    # the contract
    "CONTRACT_VERSION", "hookimpl", "Task", "Base", "Data", "TaskOptions",
    "SeveralOptimizers", "OptimizerGroup", "CommandLineInputs", "WritesSamples", "MergedExport",
    "PredictsInParts",
    # errors the CLI prints as one message
    "LorakitError", "ConfigError", "DataError", "BaseModelError", "AdapterError", "OutputError", "PluginError",
    "TrainingError",
    # option validation
    "whole_number", "number", "text",
    # data folders and files
    "list_files", "read_text", "read_jsonl", "require_folder", "resolve_member", "atomic_dir", "atomic_write_text",
    "atomic_write_bytes", "exclusive_lock",
    # images
    "IMAGE_SUFFIXES", "MAX_PIXELS", "Opened", "is_image", "image_stem", "check_image", "open_rgb", "load_images",
    # Hugging Face datasets on disk (parquet, save_to_disk), imported as data folders
    "open_split", "Split", "media_columns", "choose_media_column", "choose_column", "import_split",
    "ImportSummary", "import_options",
    # audio
    "AUDIO_SUFFIXES", "AUDIO_FORMATS", "TRANSCRIPTS_FILE", "AudioSettings", "load_audio", "read_transcripts",
    "normalize_loudness", "pauses", "speech_frames",
    "trim_silence", "prepare_folder", "print_rejected", "rejected_note", "write_wav", "write_mel_png",
    # models
    "BaseKind", "load_pretrained", "offline_unless_reachable", "unwrap", "inner_model", "device_and_dtype",
    "to_device", "eval_mode",
    "adapter_disabled", "inference_device", "main_process_first", "seeded", "fingerprint", "file_fingerprint", "cache_root",
    "pretrain_on_tensors", "load_tensors",
    # using adapters outside a run (batch jobs a plugin adds as commands)
    "AdapterSpec", "parse_adapter", "read_adapters", "open_with_adapters",
    # output
    "console", "escape", "warn", "work_progress", "rate_progress",
    # a plugin's own dependencies, checked in register_tasks
    "require_modules",
]
