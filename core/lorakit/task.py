"""The Task contract: what every modality implements.

A plugin registers one or more ``Task`` subclasses (see ``hookspecs.py``). The
core owns config, device and precision, the training loop, checkpoints, the
adapter artifact, merging and the CLI; a task owns only what is particular to
its model and data:

* ``load_base``            load the base model (hub id, local folder, ``demo``)
* ``lora_targets``         which layers get LoRA by default
* ``load_data``            read and validate a data folder into examples
* ``collate``              turn a list of examples into a batch of tensors
* ``loss``                 the training loss of a batch
* ``training_step``        (optional) several losses for several optimizers
* ``evaluate``             held-out metrics of a model
* ``predict``              outputs for user inputs
* ``write_samples``        (optional) outputs to look at or listen to
* ``prepare_training``     (optional) make auxiliary modules trainable
* ``probe``                a deterministic output used to check a merge
* ``save_merged``          write a merged model in the format its ecosystem loads

Tasks import torch and their model libraries inside methods, so that listing
tasks stays instant. Errors meant for the user are raised as subclasses of
``lorakit.errors.LorakitError`` (``DataError``, ``BaseModelError``...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

#: Version of this contract; a plugin written for another major version is refused.
CONTRACT_VERSION = "1.0"


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


@dataclass
class TaskOptions:
    """Options particular to a task; subclass it with your own fields.

    Fields are set from the ``options:`` section of a recipe or from command
    line flags (``--trigger sks`` or ``--options.trigger sks``). Validate them in
    ``__post_init__`` and raise ``ConfigError`` naming the field.
    """


class Task:
    """Base class of every modality. Subclass it and register it from a plugin.

    Class attributes a task sets:

    * ``name``: kebab-case task name used on the command line (``caption``).
    * ``description``: one line shown by ``lorakit tasks``.
    * ``options_class``: a ``TaskOptions`` dataclass of task-specific options.
    * ``metrics``: metric names ``evaluate`` returns, mapped to ``"max"`` or
      ``"min"`` (which direction is better); the first is the headline metric.
    * ``default_targets``: LoRA target module names (suffixes) or one regex.
    * ``default_modules_to_save``: modules trained fully and saved with the adapter.
    * ``contract_version``: the ``CONTRACT_VERSION`` the task was written for.
    * ``defaults``: recommended config values for this task, shaped like a
      recipe (``{"train": {"lr": 2e-3}, "lora": {"r": 16}}``); a recipe and
      flags override them.
    * ``aliases``: extra command-line flags of this task mapped to config
      fields, e.g. ``{"speaker": "data.path"}`` for ``--speaker DIR``.
    * ``input_flags``: flags of ``lorakit predict`` that are inputs rather than
      options (``("image", "question")``); see ``prediction_inputs``.

    The instance receives its options as ``self.options`` before any other call.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options_class: ClassVar[type[TaskOptions]] = TaskOptions
    metrics: ClassVar[dict[str, str]] = {}
    default_targets: ClassVar[Sequence[str] | str] = ()
    default_modules_to_save: ClassVar[Sequence[str]] = ()
    contract_version: ClassVar[str] = CONTRACT_VERSION
    defaults: ClassVar[dict[str, Any]] = {}
    aliases: ClassVar[dict[str, str]] = {}
    input_flags: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: TaskOptions | None = None):
        self.options = options if options is not None else self.options_class()

    # -- the base model -------------------------------------------------------

    def load_base(self, name: str) -> Base:
        """Load the base named ``name``: a hub id, a local folder, or ``"demo"``.

        Load weights in float32; the core moves the model to its device and
        handles mixed precision. Raise ``BaseModelError`` with the options when
        the base cannot be loaded (e.g. offline and not cached).
        """
        raise NotImplementedError

    def lora_targets(self, base: Base) -> Sequence[str] | str:
        """Modules that get LoRA unless the user names others; a list of name
        suffixes or one regex matched against the full module name."""
        return self.default_targets

    def modules_to_save(self, base: Base, examples: Sequence[Any]) -> Sequence[str]:
        """Modules trained fully and stored in the adapter (e.g. an output head
        that must learn new words); may depend on the training examples."""
        return self.default_modules_to_save

    # -- data -----------------------------------------------------------------

    def load_data(self, path: Path, base: Base | None = None, role: str = "data") -> list[Any]:
        """Read and validate the data at ``path`` into a list of examples.

        Examples are whatever ``collate`` takes (small records such as a file
        path and its label; decode heavy data in ``collate``, which runs in
        DataLoader workers). Raise ``DataError`` naming the file, the line
        and the fix for any bad input, before anything is trained. ``base`` is
        given when the task needs it to validate (e.g. a vocabulary).
        Examples cut from one source (windows of one track) should carry a
        ``group`` attribute: the core keeps each group in one split.

        ``role`` is ``"data"`` for the user's new-domain data (training and
        held-out) and ``"retain"`` for data of the base's old domain, which is
        replayed in training and evaluated for forgetting; a task may mark its
        examples by role (e.g. no trigger word on retain examples).
        """
        raise NotImplementedError

    def summarize_data(self, examples: Sequence[Any]) -> dict[str, Any]:
        """A JSON-able summary of the training data for the adapter manifest."""
        return {"examples": len(examples)}

    def collate(self, base: Base, examples: Sequence[Any]) -> dict[str, Any]:
        """Turn examples into a batch: a dict of tensors (on CPU; the core
        moves tensors to the device)."""
        raise NotImplementedError

    # -- training -------------------------------------------------------------

    def loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """The scalar training loss of ``batch`` under ``model`` (the base with
        LoRA injected)."""
        raise NotImplementedError

    def prepare_training(self, base: Base, model: Any) -> None:
        """Called after LoRA is injected and before optimizers are built.

        Make auxiliary modules trainable here, e.g. a GAN discriminator that
        training needs but the adapter does not contain (peft freezes every
        non-LoRA weight). Parameters left trainable are checkpointed for
        resume but not saved in the adapter. The default does nothing.
        """

    def optimizer_groups(self, base: Base, model: Any) -> dict[str, list[Any]]:
        """Trainable parameters by optimizer name. One optimizer (``"main"``)
        over every trainable parameter unless a task needs several, e.g.
        ``{"discriminator": [...], "generator": [...]}`` for a GAN."""
        return {"main": [p for p in model.parameters() if p.requires_grad]}

    def training_step(self, base: Base, model: Any, batch: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Yield ``(optimizer_name, loss)`` pairs for one batch, in order.

        After each yield the core back-propagates that loss into that
        optimizer's parameters only, and steps that optimizer when the
        accumulation window is complete, before asking for the next loss. A GAN
        yields the discriminator loss, then the generator loss. The default
        yields ``("main", self.loss(...))``.
        """
        yield "main", self.loss(base, model, batch)

    def validation_loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """Loss on a validation batch (no gradients); defaults to ``loss``."""
        return self.loss(base, model, batch)

    # -- evaluation and use ---------------------------------------------------

    def evaluate(self, base: Base, model: Any, examples: Sequence[Any]) -> dict[str, float]:
        """Metrics of ``model`` on held-out ``examples``; keys as in ``metrics``.

        The core calls it for the base (adapter disabled) and for the adapter on
        the same examples, and on the retain set when there is one.
        """
        raise NotImplementedError

    def predict(self, base: Base, model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """Predictions for user inputs (file paths, texts...), one dict each.

        A prediction that is audio carries ``"audio"`` (a 1-D float numpy
        array) and ``"sample_rate"``; the core writes it to a wav file
        (``--out``) and prints the record with the file's path instead.
        """
        raise NotImplementedError

    def prediction_inputs(self, inputs: Sequence[str], flags: dict[str, Any]) -> list[Any]:
        """Turn the command line of ``lorakit predict`` into ``predict`` inputs.

        ``inputs`` are the positional arguments and ``--text`` values;
        ``flags`` holds the flags named in ``input_flags`` (a repeated flag
        gives a list). The default passes ``inputs`` through.
        """
        return list(inputs)

    def write_samples(self, base: Base, model: Any, examples: Sequence[Any], folder: Path) -> None:
        """Write a few outputs of ``model`` on held-out ``examples`` into
        ``folder`` for a person to look at or listen to (wavs, spectrogram
        PNGs, captions...). The core calls it for the base (``samples/base``)
        and the adapter (``samples/adapter``) after evaluation. Default: none.
        """

    def probe(self, base: Base, model: Any) -> Any:
        """A deterministic output tensor of ``model`` on a fixed input built
        without user data; the core compares it before and after merging."""
        raise NotImplementedError

    def save_merged(self, base: Base, model: Any, path: Path) -> None:
        """Write a merged model (plain module, no LoRA) so that its own
        ecosystem loads it. The default suits Hugging Face models."""
        model.save_pretrained(path, safe_serialization=True)
        if base.processor is not None and hasattr(base.processor, "save_pretrained"):
            base.processor.save_pretrained(path)

    def trigger_words(self) -> list[str]:
        """Words that activate the adapter's style, recorded in the manifest."""
        return []


def options_fields(options_class: type[TaskOptions]) -> list[str]:
    """Names of the fields of a task's options dataclass."""
    return [f.name for f in dataclasses.fields(options_class)]
