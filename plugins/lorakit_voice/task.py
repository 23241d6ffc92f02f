"""The ``voice-clone`` task: LoRA adapters that make a coqui VITS speak in a new voice.

A user points it at a folder of one speaker's recordings with transcripts
(``--speaker DIR``). The adapter is trained with VITS's own GAN recipe
(coqui's ``train_step``: discriminator step, then generator step) and
conditioned on the base's speaker slot whose voice is closest to the target
(multi-speaker bases), so it starts from the nearest voice the base has.
Evaluation synthesises held-out transcripts and compares them with the
speaker's real held-out clips: resemblyzer speaker similarity (headline),
mel-cepstral distortion, similarity to the base's own voice, real-time factor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from lorakit.errors import ConfigError, DataError
from lorakit.options import number
from lorakit.task import Base, Task, TaskOptions

#: Seeds the fresh discriminator a checkpoint without one starts from.
DISCRIMINATOR_SEED = 1234
PROBE_TEXT = "the quick brown fox jumps over the lazy dog."
#: Sentences of the base's own voice (not the held-out ones, whose synthesis
#: by the base would trivially score 1.0 against itself).
REFERENCE_TEXTS = ("a small boat drifted down the river.", "she opened the window and looked outside.",
                   "we will meet again in the morning.")
#: Clips (at most) whose voice picks the speaker slot; synthesised sentences per slot.
SLOT_CLIPS, SLOT_SENTENCES = 8, 2


@dataclass
class VoiceOptions(TaskOptions):
    """Options of the ``voice-clone`` task.

    * ``slot``: the base's speaker slot the adapter speaks through: a slot
      name, or ``auto`` for the slot whose voice is closest to the target
      (resemblyzer similarity). Ignored by single-speaker bases. (``--speaker``
      is the speaker's folder of clips, ``data.path``.)
    * ``min_total_seconds``: less usable speech than this is an error.
    * ``noise_scale``: the prior's noise when synthesising (0 = deterministic).
    * ``length_scale``: speaking speed (above 1 is slower).
    * ``samples``: how many held-out sentences ``write_samples`` speaks.
    * ``seed``: seed of synthesis noise, so evaluations repeat exactly.
    """

    slot: str = "auto"
    min_total_seconds: float = 30.0
    noise_scale: float = 0.667
    length_scale: float = 1.0
    samples: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.slot, str) or not self.slot.strip():
            raise ConfigError(f"options.slot must be a speaker slot name or 'auto', got {self.slot!r}")
        self.min_total_seconds = number("min_total_seconds", self.min_total_seconds, 1.0, 36000.0)
        self.noise_scale = number("noise_scale", self.noise_scale, 0.0, 2.0)
        self.length_scale = number("length_scale", self.length_scale, 0.25, 4.0)
        self.samples = int(number("samples", self.samples, 0, 100))
        self.seed = int(number("seed", self.seed, 0, 2**31 - 1))


class VoiceCloneTask(Task):
    """Voice cloning on coqui-tts VITS."""

    name = "voice-clone"
    description = "Voice cloning with coqui VITS: make a TTS model speak in a new voice from a folder of clips"
    options_class = VoiceOptions
    metrics = {"speaker_similarity": "max", "mcd": "min", "base_voice_similarity": "min", "rtf": "min"}
    aliases = {"speaker": "data.path"}
    # Measured on the demo (40 clips of the sample speaker, 100 steps, ~70-200 s
    # on 2 CPU cores): held-out speaker similarity 0.39 -> 0.73, MCD 14.5 -> 9.7 dB.
    # The same run with LoRA on text-encoder attention only: 0.39 -> 0.38.
    defaults = {
        "train": {"lr": 2e-3, "batch_size": 8, "max_steps": 100, "eval_every": 50, "warmup_ratio": 0.05},
        "lora": {"r": 8, "alpha": 16},
    }

    def __init__(self, options: TaskOptions | None = None):
        super().__init__(options)
        self._slot: tuple[str, int] | None = None
        self._summary: dict[str, Any] = {}
        self._cache: dict[Any, Any] = {}

    # -- the base model -------------------------------------------------------

    def load_base(self, name: str) -> Base:
        """``demo``, a local coqui checkpoint folder, or a coqui model name."""
        from lorakit_voice.base import load_vits

        loaded = load_vits(name)
        return Base(model=loaded.model, processor=loaded.model.tokenizer, name=name,
                    extras={"folder": str(loaded.folder), "discriminator": loaded.discriminator})

    def lora_targets(self, base: Base) -> str:
        """One regex over full module names (see ``targets.py``)."""
        from lorakit_voice.targets import DEFAULT_TARGETS

        return DEFAULT_TARGETS

    # -- data -----------------------------------------------------------------

    def load_data(self, path: Path, base: Base | None = None, role: str = "data") -> list[Any]:
        """The speaker's clips, prepared at the model's rate and validated.
        The first call also picks the speaker slot the adapter speaks through."""
        from lorakit_voice.data import read_speaker

        if base is None:
            raise ConfigError("the voice-clone task needs the base model to read data (its rate and characters)")
        examples, summary = read_speaker(Path(path), base.model, self.options.min_total_seconds)
        if role == "data":
            self._summary = summary
            if self._slot is None:
                self._slot = self._choose_slot(base, examples)
                if self._slot is not None:
                    # Recorded with the adapter's options, so predict speaks through it too.
                    self.options.slot = self._slot[0]
        return examples

    def summarize_data(self, examples: Sequence[Any]) -> dict[str, Any]:
        """Clip counts, minutes, durations, rejected files and the speaker slot used."""
        seconds = sum(e.seconds for e in examples)
        slot = self._slot[0] if self._slot else None
        return {**self._summary, "train_clips": len(examples), "train_minutes": round(seconds / 60, 2),
                "speaker_slot": slot}

    def collate(self, base: Base, examples: Sequence[Any]) -> dict[str, Any]:
        """Tokens, waveforms and spectrograms as coqui's ``Vits.train_step`` reads them."""
        from lorakit_voice.batch import collate

        vits = base.model
        speaker_ids = None if self._speaker_id(base) is None else [self._speaker_id(base)] * len(examples)
        tokens = [vits.tokenizer.text_to_ids(e.text) for e in examples]
        return collate(vits, tokens, [e.audio for e in examples], speaker_ids)

    # -- training -------------------------------------------------------------

    def prepare_training(self, base: Base, model: Any) -> None:
        """Attach the discriminator: the checkpoint's, or a fresh seeded one."""
        import torch
        from TTS.tts.layers.vits.discriminator import VitsDiscriminator

        from lorakit.progress import console
        from lorakit_voice.synthesis import vits_of

        vits = vits_of(model)
        if getattr(vits, "disc", None) is not None:
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(DISCRIMINATOR_SEED)
            disc = VitsDiscriminator(periods=vits.args.periods_multi_period_discriminator,
                                     use_spectral_norm=vits.args.use_spectral_norm_disriminator)
        weights = base.extras.get("discriminator")
        if weights:
            disc.load_state_dict(weights)
            console.print("discriminator: loaded from the base checkpoint")
        else:
            console.print("discriminator: the base checkpoint has none (as released coqui checkpoints); "
                          f"training starts a fresh one (seed {DISCRIMINATOR_SEED})")
        vits.disc = disc.to(next(vits.parameters()).device).train()

    def optimizer_groups(self, base: Base, model: Any) -> dict[str, list[Any]]:
        """The discriminator's weights, and the LoRA weights of the generator."""
        from lorakit_voice.synthesis import vits_of

        disc = [p for p in vits_of(model).disc.parameters() if p.requires_grad]
        ids = {id(p) for p in disc}
        generator = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        return {"discriminator": disc, "generator": generator}

    def training_step(self, base: Base, model: Any, batch: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """coqui's two GAN steps: index 0 runs the generator (cached) and scores
        the discriminator; index 1 scores the generator on the cached pass."""
        from lorakit_voice.synthesis import vits_of

        vits = vits_of(model)
        criteria = self._criteria(vits)
        _, losses = vits.train_step(batch, criteria[0], 0)
        yield "discriminator", losses["loss"]
        _, losses = vits.train_step(batch, criteria[1], 1)
        vits.model_outputs_cache = None  # do not keep the graph alive until the next step
        yield "generator", losses["loss"]

    def loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """The generator's loss without the adversarial terms (mel L1, KL,
        duration): what one optimizer over the LoRA weights alone would use."""
        from lorakit_voice.losses import generator_losses
        from lorakit_voice.synthesis import vits_of

        vits = vits_of(model)
        return generator_losses(vits, batch, self._criteria(vits)[1])["loss"]

    def validation_loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """L1 between the log-mels of the real clip and of the generator's
        reconstruction of it (a fixed random segment, so it is repeatable)."""
        import torch

        from lorakit_voice.losses import reconstruct
        from lorakit_voice.synthesis import vits_of

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            _, real, generated = reconstruct(vits_of(model), batch)
        return torch.nn.functional.l1_loss(generated, real)

    # -- evaluation and use ---------------------------------------------------

    def evaluate(self, base: Base, model: Any, examples: Sequence[Any]) -> dict[str, float]:
        """Speech synthesised for the held-out transcripts, compared with the
        speaker's real held-out clips and with the base's own voice."""
        import numpy as np

        from lorakit.metrics.speech import cosine, mel_cepstral_distortion, real_time_factor, speaker_embedding

        if not examples:
            return {}
        rate = examples[0].sample_rate
        target = self._target_embedding(examples)
        own_voice = self._base_voice(base, model)
        similarity, to_base, distortion, seconds, samples = [], [], [], 0.0, 0
        for example in examples:
            started = time.perf_counter()
            audio = self._speak(base, model, example.text)
            seconds += time.perf_counter() - started
            samples += len(audio)
            embedding = speaker_embedding(audio, rate)
            similarity.append(cosine(embedding, target))
            to_base.append(cosine(embedding, own_voice))
            distortion.append(mel_cepstral_distortion(example.audio, audio, rate))
        return {"speaker_similarity": float(np.mean(similarity)), "mcd": float(np.mean(distortion)),
                "base_voice_similarity": float(np.mean(to_base)), "rtf": real_time_factor(seconds, samples, rate)}

    def write_samples(self, base: Base, model: Any, examples: Sequence[Any], folder: Path) -> None:
        """The first held-out transcripts spoken by ``model`` (wav + mel PNG),
        beside the real clips for comparison, and the texts in texts.txt."""
        from lorakit.listening import write_mel_png, write_wav

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for index, example in enumerate(examples[: self.options.samples], start=1):
            audio = self._speak(base, model, example.text)
            stem = f"{index:02d}"
            write_wav(folder / f"{stem}.wav", audio, example.sample_rate)
            write_mel_png(folder / f"{stem}.png", audio, example.sample_rate, f"{stem}: {example.text}")
            write_wav(folder / f"{stem}-real.wav", example.audio, example.sample_rate)
            lines.append(f"{stem}\t{example.clip}\t{example.text}")
        (folder / "texts.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def predict(self, base: Base, model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """Speak each text: ``[{"text", "audio", "sample_rate"}]``."""
        from lorakit_voice.data import check_speakable

        texts = [" ".join(str(text).split()) for text in inputs]
        if not texts or not all(texts):
            raise DataError("nothing to say: pass one or more non-empty texts (--text 'Hello there.')")
        check_speakable(base.model, [(f"text {i + 1}", t) for i, t in enumerate(texts)], "--text")
        rate = int(base.model.config.audio.sample_rate)
        return [{"text": text, "audio": self._speak(base, model, text), "sample_rate": rate} for text in texts]

    def probe(self, base: Base, model: Any) -> Any:
        """Waveform with fixed durations and no noise, plus predicted durations."""
        from lorakit_voice.synthesis import probe_output

        return probe_output(model, PROBE_TEXT, self._speaker_id(base))

    def save_merged(self, base: Base, model: Any, path: Path) -> None:
        """A coqui checkpoint folder (``model.pth`` + ``config.json``) that coqui's
        own ``Synthesizer`` loads; the discriminator is left out."""
        from lorakit_voice.base import save_checkpoint
        from lorakit_voice.synthesis import vits_of

        vits = vits_of(model)
        if any("lora_" in name for name, _ in vits.named_parameters()):
            raise ConfigError("save_merged needs the merged model (no LoRA layers left); merge the adapter first")
        save_checkpoint(vits, Path(path))

    # -- helpers --------------------------------------------------------------

    def _criteria(self, vits: Any) -> list[Any]:
        if "criteria" not in self._cache:
            self._cache["criteria"] = vits.get_criterion()
        return self._cache["criteria"]

    def _speaker_id(self, base: Base) -> int | None:
        """The slot the adapter speaks through (None for single-speaker bases)."""
        if self._slot is None:
            self._slot = self._named_slot(base)
        return self._slot[1] if self._slot else None

    def _named_slot(self, base: Base) -> tuple[str, int] | None:
        """The slot ``options.slot`` names; for ``auto`` without data to
        choose by, the first slot."""
        manager = base.model.speaker_manager
        if manager is None or not manager.name_to_id:
            return None
        slots = manager.name_to_id
        if self.options.slot == "auto":
            name = next(iter(slots))
            from lorakit.progress import console

            console.print(f"[yellow]speaker slot: 'auto' has no clips to choose by here; using {name!r} "
                          "(pass --slot NAME: the speaker_slot recorded in the adapter's lorakit.json)[/yellow]")
            return name, slots[name]
        if self.options.slot not in slots:
            known = ", ".join(list(slots)[:20]) + (" ..." if len(slots) > 20 else "")
            raise ConfigError(f"options.slot = {self.options.slot!r} is not a speaker slot of this base; "
                              f"its speakers: {known}; or use auto")
        return self.options.slot, slots[self.options.slot]

    def _choose_slot(self, base: Base, examples: Sequence[Any]) -> tuple[str, int] | None:
        """The named slot, or (``auto``) the slot whose synthesised voice is
        closest to the target's clips by resemblyzer similarity."""
        from lorakit.metrics.speech import cosine, mean_embedding
        from lorakit.progress import console
        from lorakit_voice.synthesis import Voicing, adapter_disabled, synthesize

        manager = base.model.speaker_manager
        if self.options.slot != "auto" or manager is None or not manager.name_to_id:
            return self._named_slot(base)
        rate = examples[0].sample_rate
        target = mean_embedding([e.audio for e in examples[:SLOT_CLIPS]], rate)
        texts = [e.text for e in examples[:SLOT_SENTENCES]]
        scores = {}
        # The base's own voices, even when an adapter is already in the model
        # (``lorakit evaluate`` reads data after loading the adapter).
        with adapter_disabled(base.model):
            for name, slot in manager.name_to_id.items():
                voicing = Voicing(slot, self.options.noise_scale, self.options.length_scale, self.options.seed)
                audio = [synthesize(base.model, text, voicing) for text in texts]
                scores[name] = cosine(mean_embedding(audio, rate), target)
        best = max(scores, key=scores.get)
        console.print(f"speaker slot: {best!r} is closest to the target voice (similarity {scores[best]:.3f}; "
                      + ", ".join(f"{n} {s:.3f}" for n, s in sorted(scores.items(), key=lambda i: -i[1])[:5]) + ")")
        return best, manager.name_to_id[best]

    def _voicing(self, base: Base) -> Any:
        from lorakit_voice.synthesis import Voicing

        return Voicing(self._speaker_id(base), self.options.noise_scale, self.options.length_scale, self.options.seed)

    def _speak(self, base: Base, model: Any, text: str) -> Any:
        from lorakit_voice.synthesis import synthesize

        return synthesize(model, text, self._voicing(base))

    def _target_embedding(self, examples: Sequence[Any]) -> Any:
        """Mean d-vector of the real clips (cached per set of clips)."""
        from lorakit.metrics.speech import mean_embedding

        key = ("target", tuple(e.clip for e in examples))
        if key not in self._cache:
            self._cache[key] = mean_embedding([e.audio for e in examples], examples[0].sample_rate)
        return self._cache[key]

    def _base_voice(self, base: Base, model: Any) -> Any:
        """Mean d-vector of the base's own voice in the slot (adapter off)."""
        from lorakit.metrics.speech import mean_embedding
        from lorakit_voice.synthesis import adapter_disabled

        key = ("base-voice", self._speaker_id(base))
        if key not in self._cache:
            with adapter_disabled(model):
                audio = [self._speak(base, model, text) for text in REFERENCE_TEXTS]
            self._cache[key] = mean_embedding(audio, int(base.model.config.audio.sample_rate))
        return self._cache[key]
