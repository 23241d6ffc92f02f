"""Optional capabilities of a Task: mix one in to declare it.

    class VoiceClone(lorakit.api.Task, SeveralOptimizers, WritesSamples, MergedExport): ...

Each mixin holds the methods of one capability with their defaults; the core
uses a capability only when the task class inherits it, and the conformance
kit (``lorakit.testing``) checks each one a task declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence


@dataclass
class OptimizerGroup:
    """Parameters trained by one AdamW optimizer, with its own settings.

    ``lr``, ``betas`` and ``weight_decay`` left as ``None`` take the run's
    ``train.lr`` / AdamW's (0.9, 0.999) / ``train.weight_decay``. A group's
    learning rate follows the run's warmup + cosine schedule.
    """

    params: list[Any]
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None


class SeveralOptimizers:
    """Training with several optimizers, e.g. a GAN's discriminator and generator.

    ``model`` is the ``PeftModel`` on the run's device, never wrapped in
    DistributedDataParallel (whose one-backward gradient sync cannot follow
    several backward passes per batch): reach any submodule through it. Under
    several processes each process trains on its shard and the core averages
    a group's gradients across processes before that group steps, so every
    process must yield the same groups in the same order. Parameters made
    trainable in ``prepare_training`` are checkpointed for resume but are not
    part of the adapter.
    """

    def prepare_training(self, base: Any, model: Any) -> None:
        """Called after LoRA is injected, before optimizers are built: make
        auxiliary modules trainable (peft freezes every non-LoRA weight)."""

    def optimizer_groups(self, base: Any, model: Any) -> dict[str, OptimizerGroup]:
        """Trainable parameters by optimizer name, in the order they step,
        e.g. ``{"discriminator": OptimizerGroup(d, lr=2e-4, betas=(0.8, 0.99)),
        "generator": OptimizerGroup(g)}``; ``model`` is the unwrapped PeftModel."""
        raise NotImplementedError

    def training_step(self, base: Any, model: Any, batch: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Yield ``(group name, loss)`` pairs for one batch, in order.

        After each yield the core back-propagates that loss into that group's
        parameters only (gradients that reach other groups are dropped) and
        steps its optimizer when the accumulation window is complete, before
        asking for the next loss.
        """
        raise NotImplementedError


class CommandLineInputs:
    """Inputs of ``lorakit predict`` beyond positional files and ``--text``,
    and extra flags of ``lorakit run``.

    * ``aliases``: task flags mapped to config fields, e.g.
      ``{"speaker": "data.path"}`` for ``lorakit run voice-clone --speaker DIR``.
    * ``input_flags``: flags of ``lorakit predict`` that are inputs rather
      than options (``("image", "question")``), with ``prediction_inputs``
      turning them into ``predict``'s inputs.
    * ``inputs_help``: what to give ``lorakit predict``, said when nothing is given.
    """

    aliases: ClassVar[dict[str, str]] = {}
    input_flags: ClassVar[tuple[str, ...]] = ()
    inputs_help: ClassVar[str] = "input files or --text"

    def prediction_inputs(self, inputs: Sequence[str], flags: dict[str, Any]) -> list[Any]:
        """``inputs`` are the positional arguments and ``--text`` values;
        ``flags`` holds the ``input_flags`` given (a repeated flag gives a
        list). The default passes ``inputs`` through."""
        return list(inputs)


class WritesSamples:
    """Outputs for a person to look at or listen to, written after evaluation."""

    def write_samples(self, base: Any, model: Any, examples: Sequence[Any], folder: Path) -> None:
        """Write a few outputs of ``model`` on held-out ``examples`` into
        ``folder`` (wavs, spectrogram PNGs, captions...). The core calls it
        for the base (``samples/base``, adapter disabled) and the adapter
        (``samples/adapter``), on the main process, with the ``evaluate``
        model handle."""
        raise NotImplementedError


class MergedExport:
    """``lorakit export RUN --merged OUT`` in the format the model's own
    ecosystem loads. Without this capability the core writes a Hugging Face
    ``save_pretrained`` folder when the model has that method."""

    #: Other formats the merged model can be written in, ``lorakit export RUN
    #: --NAME OUT``: ``{NAME: what it is}``, written by ``save_export``.
    export_formats: ClassVar[dict[str, str]] = {}

    def save_merged(self, base: Any, model: Any, path: Path) -> None:
        """Write ``model`` (plain, adapter merged in, on CPU) into the empty
        folder ``path``; the core renames it into place only on success."""
        raise NotImplementedError

    def save_export(self, base: Any, model: Any, path: Path, format: str, manifest: Any) -> None:
        """Write ``model`` as ``save_merged`` does, in ``format`` (a key of
        ``export_formats``); ``manifest`` is the adapter's (base, data,
        metrics) for the export's model card. Raise a ``LorakitError`` naming
        the cause when this run cannot be written in that format."""
        raise NotImplementedError


class PredictsInParts:
    """A long input answered part by part, so that ``lorakit serve`` can send
    each part's answer as soon as it is ready (speech, sentence by sentence)
    instead of after the whole, and stop working when the client goes away.

    For a task whose predictions are audio (``predicts_audio``): predicting
    each of ``input_parts(base, x)`` alone and joining the audio with
    ``part_gap_seconds`` of silence between parts gives what ``predict`` gives
    for ``x`` (the conformance kit checks it).
    """

    #: Silence between two parts' audio, in seconds.
    part_gap_seconds: ClassVar[float] = 0.0

    def input_parts(self, base: Any, input: Any) -> list[Any]:
        """The parts of ``input``, in order, each an input ``predict`` takes.
        Refuse an input ``predict`` would refuse (``DataError``, naming what
        is wrong) here, before any part is predicted."""
        raise NotImplementedError


#: Every capability, by the name the conformance kit reports.
CAPABILITIES = {
    "several-optimizers": SeveralOptimizers,
    "command-line-inputs": CommandLineInputs,
    "writes-samples": WritesSamples,
    "merged-export": MergedExport,
    "predicts-in-parts": PredictsInParts,
}


def capabilities_of(task_class: type) -> list[str]:
    """The names of the capabilities ``task_class`` declares."""
    return [name for name, mixin in CAPABILITIES.items() if issubclass(task_class, mixin)]
