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

from lorakit.api import (Base, CommandLineInputs, ConfigError, Data, DataError, MergedExport, OptimizerGroup,
                         PredictsInParts, SeveralOptimizers, Task, TaskOptions, WritesSamples, number)
from lorakit_voice.base import PIPER_PREFIX
from lorakit_voice.synthesis import SENTENCE_PAUSE_SECONDS
from lorakit_voice.targets import DEFAULT_TARGETS, PIPER_TARGETS
from lorakit_voice.transcribe import OFF as TRANSCRIBE_OFF

#: Seeds the fresh discriminator a checkpoint without one starts from.
DISCRIMINATOR_SEED = 1234
#: The discriminator's own AdamW settings: coqui's VITS recipe (lr 2e-4,
#: betas (0.8, 0.99)); the generator's LoRA takes the run's train.lr.
#: Measured on the first demo base (`lorakit run voice-clone --speaker
#: samples/voice/kauko --base demo`, lr 2e-3, 100 steps, one seed, 6 held-out clips): held-out speaker
#: similarity 0.39 -> 0.720 (MCD 9.70, base-voice similarity 0.428, val_loss
#: 0.893) vs 0.39 -> 0.716 (MCD 9.68, 0.445, 0.898) with the LoRA's lr 2e-3 and
#: AdamW's default betas, on one thread; on two threads 0.711 vs 0.724. The
#: difference is noise either way, so the discriminator keeps coqui's settings.
DISCRIMINATOR_LR = 2e-4
DISCRIMINATOR_BETAS = (0.8, 0.99)
PROBE_TEXT = "the quick brown fox jumps over the lazy dog."
#: Sentences of the base's own voice (not the held-out ones, whose synthesis
#: by the base would trivially score 1.0 against itself).
REFERENCE_TEXTS = ("a small boat drifted down the river.", "she opened the window and looked outside.",
                   "we will meet again in the morning.")
#: A clone whose held-out speaker similarity gains less than this is reported as below the bar.
MIN_GAIN = 0.05
#: A clone whose median pitch stays further than this (semitones, a major third) from the speaker's is reported.
MAX_PITCH_GAP = 4.0
#: A clone whose held-out word error rate (Whisper's) is this much above the base's, and above the
#: speaker's own recordings', is reported as hard to understand.
MAX_WER_RISE = 0.2
#: Clips (at most) whose voice picks the speaker slot; synthesised sentences per slot.
SLOT_CLIPS, SLOT_SENTENCES = 8, 2
#: Default slot choices already told in this process, by base.
_SLOT_NOTES_TOLD: set[tuple[str, str]] = set()


@dataclass
class VoiceOptions(TaskOptions):
    """Options of the ``voice-clone`` task.

    * ``slot``: the base's speaker slot the adapter speaks through: a slot
      name, or ``auto`` for the slot whose voice is closest to the target
      (resemblyzer similarity), chosen by ``prepare_base`` and saved as the
      adapter's ``options.slot``. Ignored by single-speaker bases.
    * ``min_total_seconds``: less usable speech than this is an error.
    * ``noise_scale``: the prior's noise when synthesising (0 = deterministic).
    * ``length_scale``: speaking speed (above 1 is slower).
    * ``samples``: how many held-out sentences ``write_samples`` speaks.
    * ``seed``: seed of synthesis noise, so evaluations repeat exactly.
    * ``piper_warm_steps``: training from a Piper base first warms up the
      posterior encoder its ONNX lacks, this many steps (once per voice: cached).
    * ``piper_warm_file``: a warm-up file made ahead of time with
      ``python -m lorakit_voice.piper_warmup``, used instead.
    * ``transcribe``: how a recording without a transcript gets one: ``auto``
      (Whisper tiny.en, installed with lorakit[voice]), a faster-whisper model
      name or CTranslate2 folder, or ``no`` (such recordings are not used).
      The same Whisper hears the held-out speech for ``wer`` (``no``: not measured).

    ``--speaker`` is the speaker's folder of clips (``data.path``), with
    transcripts where there are any (others are transcribed: ``transcribe``);
    a take over 15 s is cut at its sentences (``long_clips``).
    """

    slot: str = "auto"
    min_total_seconds: float = 30.0
    noise_scale: float = 0.667
    length_scale: float = 1.0
    samples: int = 4
    seed: int = 0
    piper_warm_steps: int = 150
    piper_warm_file: str = ""
    transcribe: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.slot, str) or not self.slot.strip():
            raise ConfigError(f"options.slot must be a speaker slot name or 'auto', got {self.slot!r}")
        self.min_total_seconds = number("min_total_seconds", self.min_total_seconds, 1.0, 36000.0)
        self.noise_scale = number("noise_scale", self.noise_scale, 0.0, 2.0)
        self.length_scale = number("length_scale", self.length_scale, 0.25, 4.0)
        self.samples = int(number("samples", self.samples, 0, 100))
        self.seed = int(number("seed", self.seed, 0, 2**31 - 1))
        self.piper_warm_steps = int(number("piper_warm_steps", self.piper_warm_steps, 10, 100_000))
        if not isinstance(self.piper_warm_file, str):
            raise ConfigError(f"options.piper_warm_file must be a file path, got {self.piper_warm_file!r}")
        if self.transcribe is False or str(self.transcribe).strip().lower() in TRANSCRIBE_OFF:
            self.transcribe = "no"  # YAML reads no and off as false
        if not isinstance(self.transcribe, str) or not self.transcribe.strip():
            raise ConfigError("options.transcribe must be auto, no, or a faster-whisper model name or folder, "
                              f"got {self.transcribe!r}")


class VoiceCloneTask(Task, SeveralOptimizers, CommandLineInputs, WritesSamples, MergedExport, PredictsInParts):
    """Voice cloning on coqui-tts VITS.

    The speaker slot the adapter speaks through is an option (``slot``):
    ``prepare_base`` turns ``auto`` into the slot closest to the training
    clips, and the core saves it with the adapter. The recommended settings
    are the recipe ``recipes/voice-clone.yaml``.
    """

    name = "voice-clone"
    part_gap_seconds = SENTENCE_PAUSE_SECONDS
    description = "Voice cloning with coqui VITS: make a TTS model speak in a new voice from a folder of clips"
    options_class = VoiceOptions
    metrics = {"speaker_similarity": "max", "mcd": "min", "base_voice_similarity": "min", "pitch_gap": "min",
               "rtf": "min"}
    #: Whisper's word error rate on the spoken held-out sentences, where a
    #: Whisper for the base's language is at hand (``--transcribe``); beside
    #: it ``speaker_wer``, the same for the real recordings (no direction: the
    #: rate a faithful clone would get).
    optional_metrics = {"wer": "min"}
    metric_options = {"wer": "transcribe"}
    #: One regex over full module names (see ``targets.py``).
    lora_targets = DEFAULT_TARGETS
    aliases = {"speaker": "data.path"}
    inputs_help = "--text SENTENCE (repeatable)"
    predicts_audio = True
    #: ``lorakit export RUN --piper OUT`` (``save_export``).
    export_formats = {"piper": "a Piper voice (voice.onnx + voice.onnx.json) that piper-tts plays; "
                               "runs from a Piper base"}

    def __init__(self, options: TaskOptions | None = None):
        super().__init__(options)
        # A pure cache (criteria, speaker embeddings): never read as state of a run.
        self._cache: dict[Any, Any] = {}
        #: How a default speaker slot was chosen, said when it first speaks (``_tell_slot``).
        self._slot_note: str | None = None
        #: The base's speaker slots, once ``prepare_base`` has seen it (0: a single-speaker base).
        self._slot_count: int | None = None

    # -- the base model -------------------------------------------------------

    def load_base(self, name: str) -> Base:
        """``demo``, a local coqui checkpoint folder, a coqui model name, or a
        Piper voice (``piper:NAME`` or ``piper:path/voice.onnx``)."""
        from lorakit_voice.base import load_vits
        from lorakit_voice.piper import absolute_spec

        if name.startswith(PIPER_PREFIX):  # a voice file by a relative path: recorded absolute
            name = PIPER_PREFIX + absolute_spec(name[len(PIPER_PREFIX):])
        loaded = load_vits(name)
        return Base(model=loaded.model, processor=loaded.model.tokenizer, name=name, source=str(loaded.folder),
                    extras={"folder": str(loaded.folder), "discriminator": loaded.discriminator})

    def prepare_base(self, base: Base, data: Data | None) -> list[str]:
        """Choose the speaker slot: the named one, or (``auto``) the slot whose
        voice is closest to the training clips; without data, ``auto`` is the
        first slot. The name goes into ``options.slot``, which is saved with
        the adapter, so predict and evaluate speak through the same slot.
        A Piper voice is warmed up and gets LoRA on its decoder's residual blocks alone."""
        self._slot_count = len(_slots(base))
        piper = base.name.startswith(PIPER_PREFIX)
        # Unless --lora.targets says otherwise (targets.py says why); set both
        # ways so a task prepared for a Piper voice and then another base
        # does not keep the Piper set.
        self.lora_targets = PIPER_TARGETS if piper else type(self).lora_targets
        if piper:
            if data is not None:
                self._warm_piper(base, data.measuring)
        elif self.options.piper_warm_file:
            raise ConfigError(f"options.piper_warm_file is for Piper bases (--base piper:NAME), not {base.name!r}")
        if data is not None and self.options.slot == "auto" and _slots(base):
            self.options.slot = self._closest_slot(base, data.examples)
        else:
            named = self._named_slot(base)
            if named is not None:
                self.options.slot = named[0]
        return list(self.modules_to_save)

    def _warm_piper(self, base: Base, measuring: bool) -> None:
        """Train what a Piper ONNX lacks (``lorakit_voice.piper_warmup``) before
        LoRA goes on; not for ``lorakit plan`` (minutes, and no shape changes)."""
        from lorakit_voice.piper import resolve_voice
        from lorakit_voice.piper_warmup import ensure_warm

        onnx_path, _ = resolve_voice(base.name[len(PIPER_PREFIX):])
        file = Path(self.options.piper_warm_file).expanduser() if self.options.piper_warm_file else None
        if file is not None and not file.is_file():
            raise ConfigError(f"options.piper_warm_file: no such file {file}; make one with python -m "
                              f"lorakit_voice.piper_warmup --voice {onnx_path} --out {file}")
        if not measuring:
            ensure_warm(base.model, onnx_path, self.options.piper_warm_steps, file)

    # -- data -----------------------------------------------------------------

    def load_data(self, path: Path, base: Base, role: str = "data") -> Data:
        """The speaker's clips, prepared at the model's rate and validated;
        the summary holds clip counts, minutes, durations and rejected files."""
        from lorakit_voice.data import read_speaker

        examples, summary = read_speaker(Path(path), base.model, self.options.min_total_seconds,
                                         transcribe=self.options.transcribe)
        return Data(examples, summary)

    def collate(self, base: Base, examples: Sequence[Any]) -> dict[str, Any]:
        """Tokens, waveforms and spectrograms as coqui's ``Vits.train_step`` reads them."""
        from lorakit_voice.batch import collate

        vits = base.model
        speaker = self._speaker_id(base)
        speaker_ids = None if speaker is None else [speaker] * len(examples)
        tokens = [vits.tokenizer.text_to_ids(e.text) for e in examples]
        return collate(vits, tokens, [e.audio for e in examples], speaker_ids)

    # -- training -------------------------------------------------------------

    def prepare_training(self, base: Base, model: Any) -> None:
        """Attach the discriminator: the checkpoint's, or a fresh seeded one."""
        from TTS.tts.layers.vits.discriminator import VitsDiscriminator

        from lorakit.api import console, inner_model, seeded

        vits = inner_model(model)
        if getattr(vits, "disc", None) is not None:
            return
        with seeded(DISCRIMINATOR_SEED):
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

    def optimizer_groups(self, base: Base, model: Any) -> dict[str, OptimizerGroup]:
        """The discriminator's weights, and the LoRA weights of the generator."""
        from lorakit.api import inner_model

        disc = [p for p in inner_model(model).disc.parameters() if p.requires_grad]
        ids = {id(p) for p in disc}
        generator = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        return {"discriminator": OptimizerGroup(disc, lr=DISCRIMINATOR_LR, betas=DISCRIMINATOR_BETAS),
                "generator": OptimizerGroup(generator)}

    def training_step(self, base: Base, model: Any, batch: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """coqui's two GAN steps: index 0 runs the generator (cached) and scores
        the discriminator; index 1 scores the generator on the cached pass."""
        from lorakit.api import inner_model

        vits = inner_model(model)
        criteria = self._criteria(vits)
        _, losses = vits.train_step(batch, criteria[0], 0)
        yield "discriminator", losses["loss"]
        _, losses = vits.train_step(batch, criteria[1], 1)
        vits.model_outputs_cache = None  # do not keep the graph alive until the next step
        yield "generator", losses["loss"]

    def loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """The generator's loss without the adversarial terms (mel L1, KL,
        duration): what one optimizer over the LoRA weights alone would use."""
        from lorakit.api import inner_model
        from lorakit_voice.losses import generator_losses

        vits = inner_model(model)
        return generator_losses(vits, batch, self._criteria(vits)[1])["loss"]

    def validation_loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """L1 between the log-mels of the real clip and of the generator's
        reconstruction of it (a fixed random segment, so it is repeatable)."""
        import torch

        from lorakit.api import device_and_dtype, inner_model, seeded
        from lorakit_voice.losses import reconstruct

        vits = inner_model(model)
        with seeded(0, device_and_dtype(vits)[0]):
            _, real, generated = reconstruct(vits, batch)
        return torch.nn.functional.l1_loss(generated, real)

    # -- evaluation and use ---------------------------------------------------

    def judge(self, base_scores: dict[str, float], adapter_scores: dict[str, float]) -> list[str]:
        """A clone that barely moved toward the target, that still sounds
        more like the base voice than like the target, that speaks far
        from the speaker's pitch, or whose words are lost, is said so in words."""
        if "speaker_similarity" not in adapter_scores:
            return []
        before, after = base_scores["speaker_similarity"], adapter_scores["speaker_similarity"]
        to_base = adapter_scores.get("base_voice_similarity", 0.0)
        problems, verdict = [], []
        if after - before < MIN_GAIN:
            problems.append(f"the clone gained only {after - before:+.2f} speaker similarity ({before:.2f} -> "
                            f"{after:.2f})")
        if to_base >= after:
            problems.append(f"it still sounds more like the base voice ({to_base:.2f}) than like the target "
                            f"({after:.2f})")
        slots = self._slot_count != 0  # a single-speaker base has no slot to try
        if problems:
            tries = ["more audio of the speaker (5-10 minutes of clean speech)", "more steps (--train.max_steps 400)",
                     "a larger rank (--lora.r 16)"] + (["another speaker slot (--slot NAME)"] if slots else [])
            verdict.append("; ".join(problems) + f". Try {', '.join(tries[:-1])}, or {tries[-1]}; "
                           "listen to samples/ to judge")
        gap = adapter_scores.get("pitch_gap", float("nan"))
        if gap >= MAX_PITCH_GAP:  # never for NaN (no pitch found)
            verdict.append(f"the clone speaks {gap:.1f} semitones from the speaker's pitch (the base "
                           f"{base_scores.get('pitch_gap', float('nan')):.1f}): a base renders the pitches it "
                           "learned, which LoRA moves little. Try "
                           + ("a speaker slot (--slot NAME) or " if slots else "")
                           + "a base whose voice is nearer the speaker's pitch; listen to samples/ to judge")
        base_wer, wer, own_wer = base_scores.get("wer"), adapter_scores.get("wer"), adapter_scores.get("speaker_wer")
        # A faithful clone of a speaker Whisper mishears is misheard too: only
        # worse than the speaker's own recordings is words lost.
        if None not in (base_wer, wer, own_wer) and wer - base_wer >= MAX_WER_RISE and wer > own_wer:
            verdict.append(f"the clone is hard to understand: Whisper missed {wer:.0%} of the held-out words "
                           f"(the base {base_wer:.0%}, the speaker's own recordings {own_wer:.0%}): it sounds like the "
                           "speaker but loses its words. Try a lower learning rate (--train.lr), fewer steps "
                           "(--train.max_steps) or LoRA on fewer layers (--lora.targets); listen to samples/ to judge")
        return verdict

    def evaluate(self, base: Base, model: Any, examples: Sequence[Any]) -> dict[str, float]:
        """Speech synthesised for the held-out transcripts, compared with the
        speaker's real held-out clips and with the base's own voice."""
        import numpy as np

        from lorakit_voice.metrics import (cosine, mel_cepstral_distortion, median_pitch, real_time_factor,
                                           semitones_apart, speaker_embedding)

        if not examples:
            return {}
        rate = examples[0].sample_rate
        target = self._target_embedding(examples)
        own_voice = self._base_voice(base, model)
        similarity, to_base, distortion, pitch_gaps, seconds, samples, spoken = [], [], [], [], 0.0, 0, []
        for example in examples:
            started = time.perf_counter()
            audio = self._speak(base, model, example.text)
            seconds += time.perf_counter() - started
            samples += len(audio)
            spoken.append(audio)
            embedding = speaker_embedding(audio, rate)
            similarity.append(cosine(embedding, target))
            to_base.append(cosine(embedding, own_voice))
            distortion.append(mel_cepstral_distortion(example.audio, audio, rate))
            real_pitch, pitch = self._real_pitch(example), median_pitch(audio, rate)
            if real_pitch and pitch:  # a clip with no voiced frame has no pitch to compare
                pitch_gaps.append(semitones_apart(pitch, real_pitch))
        scores = {"speaker_similarity": float(np.mean(similarity)), "mcd": float(np.mean(distortion)),
                  "base_voice_similarity": float(np.mean(to_base)),
                  "pitch_gap": float(np.mean(pitch_gaps)) if pitch_gaps else float("nan"),
                  "rtf": real_time_factor(seconds, samples, rate)}
        texts, listener = [e.text for e in examples], self._listener(base)
        wer = listener.word_error_rate(texts, spoken, rate)
        if wer is None:
            return scores
        key = ("speaker_wer", tuple(e.clip for e in examples))  # the real clips: heard once per set
        if key not in self._cache:
            self._cache[key] = listener.word_error_rate(texts, [e.audio for e in examples], rate)
        return {**scores, "wer": wer, "speaker_wer": self._cache[key]}

    def write_samples(self, base: Base, model: Any, examples: Sequence[Any], folder: Path) -> None:
        """The first held-out transcripts spoken by ``model``: ``NN.wav``, its
        mel spectrogram ``NN.png``, the real clip ``NN-real.wav`` to compare
        and ``NN.txt`` (the clip's name and text), which the run's report
        shows together."""
        from lorakit.api import write_mel_png, write_wav

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for index, example in enumerate(examples[: self.options.samples], start=1):
            audio = self._speak(base, model, example.text)
            stem = f"{index:02d}"
            write_wav(folder / f"{stem}.wav", audio, example.sample_rate)
            write_mel_png(folder / f"{stem}.png", audio, example.sample_rate, f"{stem}: {example.text}")
            write_wav(folder / f"{stem}-real.wav", example.audio, example.sample_rate)
            (folder / f"{stem}.txt").write_text(f"{example.text}\n(real: {example.clip})\n", encoding="utf-8")

    def predict(self, base: Base, model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """Speak each text, sentence by sentence: ``[{"text", "audio", "sample_rate"}]``."""
        from lorakit.api import work_progress
        from lorakit_voice.data import check_speakable

        texts = [_spoken_text(text) for text in inputs]
        if not texts or not all(texts):
            raise DataError("nothing to say: pass one or more non-empty texts (--text 'Hello there.')")
        check_speakable(base.model, [(f"text {i + 1}", t) for i, t in enumerate(texts)], "--text")
        rate = int(base.model.config.audio.sample_rate)
        sentences = [self._sentences(base, text) for text in texts]
        with work_progress("speaking", sum(map(len, sentences)), enabled=None) as advance:  # `lorakit predict` only
            return [{"text": text, "audio": self._speak(base, model, parts, advance), "sample_rate": rate}
                    for text, parts in zip(texts, sentences)]

    def input_parts(self, base: Base, input: Any) -> list[str]:
        """A text's sentences, as ``predict`` speaks them (a server streams
        them one by one)."""
        from lorakit_voice.data import check_speakable

        text = _spoken_text(input)
        if not text:
            raise DataError("nothing to say: the text is empty")
        check_speakable(base.model, [("text", text)], "--text")
        return self._sentences(base, text)

    def probe(self, base: Base, model: Any) -> Any:
        """Waveform with fixed durations and no noise, plus predicted durations."""
        from lorakit_voice.synthesis import probe_output

        return probe_output(model, PROBE_TEXT, self._speaker_id(base))

    def save_merged(self, base: Base, model: Any, path: Path) -> None:
        """A coqui checkpoint folder (``model.pth`` + ``config.json``) that coqui's
        own ``Synthesizer`` loads; the discriminator is left out."""
        from lorakit.api import inner_model
        from lorakit_voice.base import save_checkpoint
        from lorakit_voice.export_card import write_clone_card

        if base.name.startswith(PIPER_PREFIX):
            # A coqui config cannot name a Piper voice's phoneme ids: the folder would not load again.
            raise ConfigError(f"lorakit export --merged: this voice was trained from the Piper voice {base.name!r}; "
                              "export it as a Piper voice instead: lorakit export RUN --piper OUT, which piper-tts "
                              "plays and lorakit takes as a base (--base piper:OUT/voice.onnx; lorakit serve "
                              "--base voice-clone=piper:OUT/voice.onnx serves it merged)")
        vits = inner_model(model)
        if any("lora_" in name for name, _ in vits.named_parameters()):
            raise ConfigError("save_merged needs the merged model (no LoRA layers left); merge the adapter first")
        save_checkpoint(vits, Path(path))
        named = self._named_slot(base)
        write_clone_card(Path(path), None if named is None else named[0])

    def save_export(self, base: Base, model: Any, path: Path, format: str, manifest: Any) -> None:
        """``--piper``: the merged voice as a Piper voice (``lorakit_voice.piper_export``)."""
        from lorakit.api import console, inner_model
        from lorakit_voice.piper_export import write_piper_voice

        if format != "piper":
            raise ConfigError(f"the voice-clone task writes no {format!r} export "
                              f"(formats: {', '.join(self.export_formats)})")
        difference = write_piper_voice(inner_model(model), base.name, Path(path), manifest)
        console.print(f"piper export: onnxruntime speaks as the merged model (max difference {difference:.2e})")

    # -- helpers --------------------------------------------------------------

    def _criteria(self, vits: Any) -> list[Any]:
        if "criteria" not in self._cache:
            self._cache["criteria"] = vits.get_criterion()
        return self._cache["criteria"]

    def _speaker_id(self, base: Base) -> int | None:
        """The id of the slot ``options.slot`` names (None for single-speaker bases)."""
        slots = _slots(base)
        if not slots:
            return None
        if self.options.slot == "auto":
            raise ConfigError("options.slot is still 'auto': prepare_base(base, data) chooses the speaker slot "
                              "before the base is used; call it first, or pass --slot NAME")
        return self._named_slot(base)[1]

    def _named_slot(self, base: Base) -> tuple[str, int] | None:
        """The slot ``options.slot`` names; for ``auto`` without data to
        choose by, the cloned voice of a merged export, else the first slot
        (None for single-speaker bases)."""
        slots = _slots(base)
        if not slots:
            return None
        if self.options.slot == "auto":
            from lorakit_voice.export_card import cloned_speaker

            name = cloned_speaker(base.extras.get("folder"))
            if name in slots:  # a merged export: its cloned voice is the default
                self._slot_note = (f"speaker slot: {name!r}, the voice cloned into this model "
                                   "(pass --slot NAME for another)")
                return name, slots[name]
            name = next(iter(slots))
            self._slot_note = (f"[yellow]speaker slot: 'auto' has no clips to choose by here; using {name!r} "
                               "(pass --slot NAME; an adapter records its slot as options.slot in "
                               "lorakit.json)[/yellow]")
            return name, slots[name]
        if self.options.slot not in slots:
            known = ", ".join(list(slots)[:20]) + (" ..." if len(slots) > 20 else "")
            raise ConfigError(f"options.slot = {self.options.slot!r} is not a speaker slot of this base; "
                              f"its speakers: {known}; or use auto")
        return self.options.slot, slots[self.options.slot]

    def _closest_slot(self, base: Base, examples: Sequence[Any]) -> str:
        """The slot whose synthesised voice is closest to the target's clips
        by resemblyzer similarity."""
        from lorakit.api import console
        from lorakit_voice.metrics import cosine, mean_embedding
        from lorakit_voice.synthesis import Voicing, synthesize

        rate = examples[0].sample_rate
        target = mean_embedding([e.audio for e in examples[:SLOT_CLIPS]], rate)
        texts = [e.text for e in examples[:SLOT_SENTENCES]]
        scores = {}
        for name, slot in _slots(base).items():
            voicing = Voicing(slot, self.options.noise_scale, self.options.length_scale, self.options.seed)
            audio = [synthesize(base.model, text, voicing) for text in texts]
            scores[name] = cosine(mean_embedding(audio, rate), target)
        best = max(scores, key=scores.get)
        console.print(f"speaker slot: {best!r} is closest to the target voice (similarity {scores[best]:.3f}; "
                      + ", ".join(f"{n} {s:.3f}" for n, s in sorted(scores.items(), key=lambda i: -i[1])[:5]) + ")")
        return best

    def _voicing(self, base: Base) -> Any:
        from lorakit_voice.synthesis import Voicing

        return Voicing(self._speaker_id(base), self.options.noise_scale, self.options.length_scale, self.options.seed)

    def _speak(self, base: Base, model: Any, text: str | list[str], each_sentence: Any = None) -> Any:
        """``text`` in one pass (a held-out clip's transcript, compared with the
        clip), or a list of sentences one by one (any text a user sends),
        calling ``each_sentence()`` after each."""
        from lorakit_voice.synthesis import synthesize, synthesize_sentences

        self._tell_slot(base)
        if isinstance(text, str):
            return synthesize(model, text, self._voicing(base))
        return synthesize_sentences(model, text, self._voicing(base), each_sentence)

    def _sentences(self, base: Base, text: str) -> list[str]:
        """The sentences ``text`` is spoken in: in the form the model speaks
        (symbols spelled out), cut by the rules of the base's language."""
        from lorakit_voice.data import base_language, speakable_form
        from lorakit_voice.sentences import split_sentences

        return split_sentences(speakable_form(base.model, text), language=base_language(base.model))

    def _tell_slot(self, base: Base) -> None:
        """Say which slot a default choice picked, when it first speaks: not
        when a base is only loaded (a server picks the voice per request),
        and once per process and voice."""
        from lorakit.api import console

        note, self._slot_note = self._slot_note, None
        if note is not None and (base.name, note) not in _SLOT_NOTES_TOLD:
            _SLOT_NOTES_TOLD.add((base.name, note))
            console.print(note)

    def _listener(self, base: Base) -> Any:
        """Whisper for the word error rate, in the base's language (loaded once)."""
        from lorakit_voice.data import base_language
        from lorakit_voice.intelligibility import Listener

        if "listener" not in self._cache:
            self._cache["listener"] = Listener(self.options.transcribe, base_language(base.model))
        return self._cache["listener"]

    def _target_embedding(self, examples: Sequence[Any]) -> Any:
        """Mean d-vector of the real clips (cached per set of clips)."""
        from lorakit_voice.metrics import mean_embedding

        key = ("target", tuple(e.clip for e in examples))
        if key not in self._cache:
            self._cache[key] = mean_embedding([e.audio for e in examples], examples[0].sample_rate)
        return self._cache[key]

    def _real_pitch(self, example: Any) -> float | None:
        """The median pitch of a real clip (cached per clip)."""
        from lorakit_voice.metrics import median_pitch

        key = ("pitch", example.clip)
        if key not in self._cache:
            self._cache[key] = median_pitch(example.audio, example.sample_rate)
        return self._cache[key]

    def _base_voice(self, base: Base, model: Any) -> Any:
        """Mean d-vector of the base's own voice in the slot (adapter off)."""
        from lorakit.api import adapter_disabled
        from lorakit_voice.metrics import mean_embedding

        key = ("base-voice", self._speaker_id(base))
        if key not in self._cache:
            with adapter_disabled(model):
                audio = [self._speak(base, model, text) for text in REFERENCE_TEXTS]
            self._cache[key] = mean_embedding(audio, int(base.model.config.audio.sample_rate))
        return self._cache[key]


def _spoken_text(text: Any) -> str:
    """A text to speak as one line of plain characters (``data.plain``)."""
    from lorakit_voice.data import plain

    return plain(" ".join(str(text).split()))


def _slots(base: Base) -> dict[str, int]:
    """The base's speaker slots by name (empty for a single-speaker base)."""
    manager = base.model.speaker_manager
    return dict(manager.name_to_id) if manager is not None and manager.name_to_id else {}
