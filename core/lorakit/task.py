"""The Task contract: what every modality implements.

A plugin registers ``Task`` subclasses (see ``hookspecs.py``). The core owns
config, device and precision, the training loop, checkpoints, the adapter
artifact, merging and the CLI; a task owns what is particular to its model
and data. Seven methods are required:

* ``load_base``    load the base model (hub id, local folder, ``demo``)
* ``load_data``    read and validate a data folder into ``Data``
* ``collate``      turn a list of examples into a batch of tensors
* ``loss``         the training loss of a batch
* ``evaluate``     held-out metrics of a model
* ``predict``      outputs for user inputs
* ``probe``        a deterministic output, used to check merges and reloads

Three are optional: ``prepare_base`` (change the base to fit the data, choose
the modules that train fully), ``validation_loss`` and ``trigger_words``.
Further capabilities (several optimizers, command-line inputs, samples,
merged export) are mixins in ``lorakit.capabilities``.

What ``model`` is, per method:

* ``loss`` / ``validation_loss``: the model as the trainer runs it, wrapped
  by accelerate (DistributedDataParallel) under several processes. Call it
  (``model(**batch)``) so gradients are synchronised; reach its attributes
  through ``lorakit.api.unwrap(model)``. (``training_step`` of a task with
  several optimizers gets the unwrapped model: see ``capabilities``.)
* ``evaluate``, ``probe`` (and ``write_samples``): the ``PeftModel`` in eval
  mode on the run's device, under ``torch.inference_mode``; the core runs the
  base by disabling the adapter. Only the main process calls them.
* ``predict`` (and ``save_merged``): the plain model with the adapter merged
  in (or the base alone), in eval mode. Under ``lorakit serve``, ``predict``
  gets the ``PeftModel`` with the request's adapters active and unmerged
  (or a merged copy): reach the model's methods through
  ``lorakit.api.inner_model``.

Tasks hold no per-run state: what ``load_data`` finds goes into the returned
``Data``; decisions about the base made from the data are options, set in
``prepare_base`` and saved with the adapter. Import torch and model libraries
inside methods, so that listing tasks stays instant. Errors meant for the
user are ``lorakit.errors.LorakitError`` subclasses.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

#: Version of the plugin API (this contract and ``lorakit.api``); a plugin
#: written for another major version is refused.
CONTRACT_VERSION = "2.5"


@dataclass
class Base:
    """A loaded base model and what the task needs around it.

    ``model`` is the ``torch.nn.Module`` the core injects LoRA into and trains;
    ``processor`` is whatever turns raw inputs into tensors and outputs back
    (a Hugging Face processor, a tokenizer, a config...). ``name`` is what the
    user passed as ``--base`` and is recorded in the adapter manifest, so the
    adapter can find its base again.
    """

    model: Any
    processor: Any = None
    name: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    #: The folder the weights were read from, when the model does not say
    #: (a Hugging Face model's ``name_or_path`` does): lets the core remember
    #: the base's fingerprint instead of hashing every weight on each command.
    source: str | None = None


@dataclass
class Data:
    """What ``load_data`` read: the examples and a JSON-able summary.

    Examples are whatever ``collate`` takes. An example with a ``group``
    attribute (the track a window was cut from, the image a question is
    about) is kept in one split with the rest of its group; one with a
    ``label`` attribute is split stratified by label. The summary of the
    training data (counts, minutes, rejected files...) goes into the adapter
    manifest; the core adds the split sizes.
    """

    examples: list[Any]
    summary: dict[str, Any] = field(default_factory=dict)
    #: True when ``lorakit plan`` measures memory with it: shapes matter, not
    #: weights, so ``prepare_base`` skips what only trains the base (a warm-up).
    measuring: bool = False


@dataclass
class TaskOptions:
    """Options particular to a task; subclass it with your own fields.

    Fields are set from the ``options:`` section of a recipe or from command
    line flags (``--trigger sks`` or ``--options.trigger sks``). Validate them
    in ``__post_init__`` and raise ``ConfigError`` naming the field. Give
    every field a default (``field(default_factory=list)`` for a list) and a
    ``#:`` comment saying what it does (or a docstring entry
    ``* ``name``: what it does``): ``lorakit run TASK --help`` lists each
    option with its default and that line.
    """


class Task:
    """Base class of every modality. Subclass it and register it from a plugin.

    Class attributes:

    * ``name``: kebab-case task name used on the command line (``caption``).
    * ``description``: one line shown by ``lorakit tasks``.
    * ``options_class``: a ``TaskOptions`` dataclass of task-specific options.
    * ``metrics``: metric names ``evaluate`` returns, mapped to ``"max"`` or
      ``"min"`` (which direction is better); the first is the headline metric.
    * ``optional_metrics``: the same for metrics ``evaluate`` returns only
      under an option (caption's ``clip_score`` with ``--clip``): reports
      show which way their changes go, and ``train.metric`` may watch one
      (the run first asks ``evaluate`` of one validation example whether
      the run's options measure it); the conformance kit does not ask for them.
    * ``metric_options``: for an optional metric, the option that turns it on
      (caption's ``{"clip_score": "clip"}``), named when a run watches the
      metric without it and in ``lorakit run TASK --help``.
    * ``lora_targets``: module name suffixes (a list) or one regex that must
      match a full module name (``re.fullmatch``, as peft does); the user's
      ``--lora.targets`` replaces it. Read after ``prepare_base``, which may
      set it on the instance for a base that needs other defaults.
    * ``modules_to_save``: modules trained fully and saved with the adapter
      (``prepare_base`` may choose others from the data).
    * ``predicts_audio``: ``predict`` answers with audio, so ``lorakit
      predict`` needs ``--out``; said before the base loads, not after the
      work is done.
    * ``contract_version``: the ``CONTRACT_VERSION`` the task was written for.

    Recommended settings (learning rate, steps...) are data: ship a recipe
    named after the task (``recipes/caption.yaml``); ``lorakit run caption``
    starts from it. The instance receives its options as ``self.options``
    before any other call.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options_class: ClassVar[type[TaskOptions]] = TaskOptions
    metrics: ClassVar[dict[str, str]] = {}
    optional_metrics: ClassVar[dict[str, str]] = {}
    metric_options: ClassVar[dict[str, str]] = {}
    lora_targets: ClassVar[Sequence[str] | str] = ()
    modules_to_save: ClassVar[Sequence[str]] = ()
    predicts_audio: ClassVar[bool] = False
    contract_version: ClassVar[str] = CONTRACT_VERSION

    def __init__(self, options: TaskOptions | None = None):
        self.options = options if options is not None else self.options_class()

    # -- required ---------------------------------------------------------------

    def load_base(self, name: str) -> Base:
        """Load the base named ``name``: a hub id, a local folder, or ``"demo"``.

        Load weights in float32; the core moves the model to its device and
        handles mixed precision. Raise ``BaseModelError`` with the options when
        the base cannot be loaded (e.g. offline and not cached).
        """
        raise NotImplementedError

    def load_data(self, path: Path, base: Base, role: str = "data") -> Data:
        """Read and validate the data at ``path``.

        Keep examples small (a file path and its label); decode heavy data in
        ``collate``. Raise ``DataError`` naming the file, the line and the fix
        for any bad input, before anything trains. ``role`` is ``"data"`` for
        the user's new-domain data and ``"retain"`` for data of the base's old
        domain (replayed in training, evaluated for forgetting); a task may
        treat them differently (e.g. no trigger word on retain examples).
        """
        raise NotImplementedError

    def collate(self, base: Base, examples: Sequence[Any]) -> dict[str, Any]:
        """Turn examples into a batch: a dict of tensors (on CPU; the core
        moves tensors to the device). Runs in DataLoader workers."""
        raise NotImplementedError

    def loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """The scalar training loss of ``batch`` under ``model``."""
        raise NotImplementedError

    def evaluate(self, base: Base, model: Any, examples: Sequence[Any]) -> dict[str, float]:
        """Metrics of ``model`` on held-out ``examples``; keys as in ``metrics``.

        The core calls it for the base (adapter disabled) and for the adapter
        on the same examples, and on the retain set when there is one.
        """
        raise NotImplementedError

    def predict(self, base: Base, model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """Predictions for user inputs (file paths, texts...), one dict each.

        A prediction that is audio carries ``"audio"`` (a 1-D float numpy
        array) and ``"sample_rate"``; the core writes it to a wav file
        (``--out``) and prints the record with the file's path instead. A
        task whose predictions are audio sets ``predicts_audio``.
        """
        raise NotImplementedError

    def probe(self, base: Base, model: Any) -> Any:
        """A deterministic output tensor of ``model`` on a fixed input built
        without user data; the core compares it before and after merging."""
        raise NotImplementedError

    # -- optional ---------------------------------------------------------------

    def prepare_base(self, base: Base, data: Data | None) -> Sequence[str]:
        """Fit the base to the training data before LoRA goes in; return the
        modules to train fully and save with the adapter.

        Called after the base's fingerprint is taken, so a change made here
        (a classification head grown for new labels) does not make the
        adapter's base look different. ``data`` is the training data when a
        run trains, and ``None`` when an adapter is opened for use: then
        repeat the change from ``self.options``. Options set here (a label
        list, a speaker slot) are saved in the adapter manifest and restored
        when it is opened. The default changes nothing and returns
        ``modules_to_save``.
        """
        return list(self.modules_to_save)

    def validation_loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """Loss on a validation batch (no gradients); defaults to ``loss``."""
        return self.loss(base, model, batch)

    def trigger_words(self) -> list[str]:
        """Words that activate the adapter's style, recorded in the manifest."""
        return []

    @classmethod
    def metric_directions(cls) -> dict[str, str]:
        """Which way is better ("max"/"min") for every metric ``evaluate``
        may return, the optional ones included."""
        return {**cls.optional_metrics, **cls.metrics}

    def judge(self, base_scores: dict[str, float], adapter_scores: dict[str, float]) -> list[str]:
        """Plain-words warnings when the held-out metrics show the adapter
        falling short (e.g. it did not learn the target), each with what to
        try; the report shows them under its table. The default speaks of
        the headline metric (the first of ``metrics``): one line when the
        adapter does no better than the base on it."""
        if not self.metrics:
            return []
        name, direction = next(iter(self.metrics.items()))
        base, adapter = base_scores.get(name), adapter_scores.get(name)
        if base is None or adapter is None or math.isnan(base) or math.isnan(adapter):
            return []
        if (adapter > base) if direction == "max" else (adapter < base):
            return []
        return [f"the adapter does no better than the base on held-out {name} ({base:.4g} -> {adapter:.4g}). "
                "Check that the held-out examples are like the training ones, then try more training "
                "(--train.epochs or --train.max_steps), a larger learning rate (--train.lr) or rank "
                "(--lora.r 16), or more data"]


def options_fields(options_class: type[TaskOptions]) -> list[str]:
    """Names of the fields of a task's options dataclass."""
    return [f.name for f in dataclasses.fields(options_class)]
