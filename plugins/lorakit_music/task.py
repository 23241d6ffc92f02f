"""The ``music-style`` task: LoRA adapters that steer MusicGen toward a style.

A musician points it at a folder of tracks in one style (``--data DIR``).
Tracks are cut into windows and tokenised once by the base's EnCodec (codes
cached on disk); the adapter learns, on the decoder's linear layers
(self-attention, cross-attention, feed-forward), to predict those codes
given the tracks' descriptions. The text encoder and the codec stay frozen.

Evaluation is the held-out negative log-likelihood per code (and its
perplexity) of windows of tracks the adapter never saw: how much better the
model predicts music of the style. Generated clips per prompt (wav and
spectrogram) are written for base and adapter, to listen to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lorakit.api import (Base, CommandLineInputs, ConfigError, Data, DataError, Task, TaskOptions, WritesSamples,
                         number, text, whole_number)

#: The decoder's linear layers: attention over codes (self_attn), over the
#: text (encoder_attn), and the feed-forward (fc1, fc2).
DECODER_TARGETS = r".*decoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|encoder_attn\.(q|k|v|out)_proj|fc1|fc2)"
MAX_WINDOW_SECONDS = 30.0
EVAL_BATCH = 8


@dataclass
class MusicOptions(TaskOptions):
    """Options of the ``music-style`` task.

    * ``trigger``: a word put before every description (and used as the
      description of tracks without one), to call the style up by name.
    * ``window_seconds``: tracks are cut into windows this long (at most 30 s).
    * ``prompts``: prompts of the sample clips ``write_samples`` generates;
      by default the first held-out descriptions.
    * ``samples``: how many prompts get a sample clip.
    * ``seconds``: length of generated clips (samples and ``predict``).
    * ``guidance_scale``, ``temperature``, ``top_k``: sampling (MusicGen's
      defaults: 3.0, 1.0, 250); ``seed`` makes generation repeat exactly.
    * ``cache_dir``: where codes are cached (default ``$LORAKIT_CACHE`` or
      ``~/.cache/lorakit``, in ``music-codes/``).
    """

    trigger: str = ""
    window_seconds: float = 10.0
    prompts: list[str] = field(default_factory=list)
    samples: int = 3
    seconds: float = 8.0
    guidance_scale: float = 3.0
    temperature: float = 1.0
    top_k: int = 250
    seed: int = 0
    cache_dir: str = ""

    def __post_init__(self) -> None:
        self.trigger = text("trigger", self.trigger)
        self.window_seconds = number("window_seconds", self.window_seconds, 0.5, MAX_WINDOW_SECONDS)
        if isinstance(self.prompts, str):
            self.prompts = [self.prompts]
        if not isinstance(self.prompts, list) or not all(isinstance(p, str) and p.strip() for p in self.prompts):
            raise ConfigError(f"options.prompts must be a list of non-empty prompts, got {self.prompts!r}")
        self.samples = whole_number("samples", self.samples, 0, 100)
        self.seconds = number("seconds", self.seconds, 0.1, 120.0)
        self.guidance_scale = number("guidance_scale", self.guidance_scale, 1.0, 20.0)
        self.temperature = number("temperature", self.temperature, 0.01, 10.0)
        self.top_k = whole_number("top_k", self.top_k, 0, 1_000_000)
        self.seed = whole_number("seed", self.seed, 0, 2**31 - 1)
        self.cache_dir = text("cache_dir", self.cache_dir)


class MusicStyleTask(Task, CommandLineInputs, WritesSamples):
    """Music style on MusicGen (``MusicgenForConditionalGeneration``).

    Merged export is the core's Hugging Face ``save_pretrained`` (model and
    processor), which transformers loads as it is. The recommended settings
    are the recipe ``recipes/music-style.yaml``.
    """

    name = "music-style"
    description = "Music style with MusicGen: steer text-to-music generation toward a folder of tracks"
    options_class = MusicOptions
    metrics = {"nll": "min", "perplexity": "min"}
    lora_targets = DECODER_TARGETS
    input_flags = ("prompt",)
    inputs_help = "--prompt TEXT (repeatable)"
    predicts_audio = True

    # -- the base model -------------------------------------------------------

    def load_base(self, name: str) -> Base:
        """``demo``, a local folder written by ``save_pretrained``, or a hub id
        such as ``facebook/musicgen-small``."""
        from lorakit_music.base import load_musicgen

        return load_musicgen(name)

    # -- data -----------------------------------------------------------------

    def load_data(self, path: Path, base: Base, role: str = "data") -> Data:
        """Windows of the folder's tracks as codes (cached), with descriptions;
        the summary holds tracks, windows, minutes and rejected files.
        Retain tracks (other music) get no trigger word."""
        from lorakit_music.base import frame_rate, sample_rate
        from lorakit_music.codes import CodeCache, default_cache_folder
        from lorakit_music.data import Windowing, read_tracks

        model = base.model
        windowing = Windowing(self.options.window_seconds, sample_rate(model), frame_rate(model))
        cache = CodeCache(Path(self.options.cache_dir) if self.options.cache_dir else default_cache_folder())
        trigger = self.options.trigger if role == "data" else ""
        found = read_tracks(Path(path), model.audio_encoder, model.decoder.num_codebooks, windowing, cache, trigger)
        _print_found(Path(path), found, windowing)
        return Data(found.examples, found.summary(windowing.frame_rate))

    def collate(self, base: Base, examples: Sequence[Any]) -> dict[str, Any]:
        """Tokenised descriptions and delay-pattern labels ``(batch, steps, K)``."""
        from torch.nn.utils.rnn import pad_sequence

        from lorakit_music.codes import delay_labels

        decoder = base.model.decoder
        text_inputs = base.processor.tokenizer([e.description for e in examples], padding=True, return_tensors="pt")
        labels = pad_sequence([delay_labels(decoder, e.codes) for e in examples], batch_first=True,
                              padding_value=decoder.config.pad_token_id)
        return {"input_ids": text_inputs.input_ids, "attention_mask": text_inputs.attention_mask, "labels": labels}

    # -- training -------------------------------------------------------------

    def loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """MusicGen's own loss: cross-entropy per codebook, averaged."""
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss

    # -- evaluation and use ---------------------------------------------------

    def evaluate(self, base: Base, model: Any, examples: Sequence[Any]) -> dict[str, float]:
        """Negative log-likelihood per code (nats) over every code of the
        held-out windows, and its perplexity."""
        import torch

        from lorakit.api import eval_mode, to_device

        if not examples:
            return {}
        pad = base.model.decoder.config.pad_token_id
        total, count = 0.0, 0
        with eval_mode(model), torch.inference_mode():
            for start in range(0, len(examples), EVAL_BATCH):
                batch = to_device(self.collate(base, examples[start : start + EVAL_BATCH]), model)
                logits = model(**batch).logits.float()  # (batch * K, steps, vocabulary)
                labels = batch["labels"].transpose(1, 2).reshape(logits.shape[0], -1)
                logits = logits[:, -labels.shape[1] :]
                valid = labels != pad
                nll = torch.nn.functional.cross_entropy(logits[valid], labels[valid], reduction="sum")
                total += float(nll)
                count += int(valid.sum())
        mean = total / count
        return {"nll": mean, "perplexity": math.exp(mean)}

    def write_samples(self, base: Base, model: Any, examples: Sequence[Any], folder: Path) -> None:
        """A clip per prompt: ``NN.wav``, its spectrogram ``NN.png`` and the
        prompt ``NN.txt`` (which the run's report shows together)."""
        from lorakit_music.generation import generate

        prompts = self._sample_prompts(examples)
        if not prompts:
            return
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        audio, rate = generate(model, base.processor, prompts, self._sampling())
        for index, (prompt, clip) in enumerate(zip(prompts, audio), start=1):
            stem = f"{index:02d}"
            _write_clip(folder / stem, clip, rate, f"{stem}: {prompt}")
            (folder / f"{stem}.txt").write_text(prompt + "\n", encoding="utf-8")

    def prediction_inputs(self, inputs: Sequence[str], flags: dict[str, Any]) -> list[Any]:
        """Prompts from ``--prompt`` (repeatable), ``--text`` and positional arguments."""
        prompts = flags.get("prompt", [])
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        return [*prompts, *inputs]

    def predict(self, base: Base, model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """A clip per prompt: ``[{"prompt", "seconds", "audio", "sample_rate"}]``."""
        from lorakit_music.generation import generate

        prompts = [" ".join(str(p).split()) for p in inputs]
        if not prompts or not all(prompts):
            raise DataError("nothing to play: pass one or more non-empty prompts (--prompt 'calm piano')")
        audio, rate = generate(model, base.processor, prompts, self._sampling())
        # The core writes mono wavs; stereo clips are mixed down for --out.
        return [{"prompt": p, "seconds": self.options.seconds, "audio": clip.mean(axis=0), "sample_rate": rate}
                for p, clip in zip(prompts, audio)]

    def probe(self, base: Base, model: Any) -> Any:
        """Decoder logits for a fixed prompt and fixed codes."""
        from lorakit_music.generation import probe_logits

        return probe_logits(model, base.processor)

    def trigger_words(self) -> list[str]:
        return [self.options.trigger] if self.options.trigger else []

    # -- helpers --------------------------------------------------------------

    def _sampling(self) -> Any:
        from lorakit_music.generation import Sampling

        o = self.options
        return Sampling(o.seconds, o.guidance_scale, o.temperature, o.top_k, o.seed)

    def _sample_prompts(self, examples: Sequence[Any]) -> list[str]:
        if self.options.prompts:
            return self.options.prompts[: self.options.samples]
        prompts: list[str] = []
        for example in examples:
            if example.description not in prompts:
                prompts.append(example.description)
        return prompts[: self.options.samples]


def _write_clip(stem: Path, clip: Any, rate: int, title: str) -> None:
    """``stem.wav`` (all channels) and ``stem.png`` (spectrogram of the mix)."""
    from lorakit.api import write_mel_png, write_wav

    write_wav(stem.with_suffix(".wav"), clip.T, rate)
    write_mel_png(stem.with_suffix(".png"), clip.mean(axis=0), rate, title)


def _print_found(folder: Path, found: Any, windowing: Any) -> None:
    from lorakit.api import console, print_rejected

    console.print(f"{folder}: {found.tracks} tracks -> {len(found.examples)} windows of {windowing.seconds:g} s "
                  f"({found.encoded} tokenised, {found.cached} from the code cache)")
    print_rejected(found.rejected)
