"""The ``caption`` task: LoRA adapters for BLIP image captioning.

An adapter learns a new domain or a house style of captions from a folder of
images and captions (see ``data.py``). An optional trigger word is written
before every training caption and given to the model as a prompt at
generation, so the adapter's style is tied to it, as with Stable Diffusion
trigger words; it is never part of the caption the user gets back. Captions
with words the base never says train its output head too (``train_head``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lorakit.api import (
    Base,
    BaseKind,
    CommandLineInputs,
    Data,
    DataError,
    IMAGE_SUFFIXES,
    MergedExport,
    Task,
    TaskOptions,
    WritesSamples,
    check_image,
    eval_mode,
    is_image,
    list_files,
    load_pretrained,
    to_device,
    whole_number,
)
from lorakit.api import text as text_option
from lorakit_blip import batch_slices, bos_id, load_pixel_values, max_length, probe_pixels
from lorakit_blip.generated import Generated, image_positions, read_generated
from lorakit_blip.head import checked_choice
from lorakit_caption.limits import MAX_BEAMS, MAX_NEW_TOKENS

#: Held-out images shown in a run's samples (and report), base and adapter.
_SAMPLES = 12

#: The tiny BLIP shipped with the plugin, built by ``make_demo``.
DEMO_BASE = Path(__file__).parent / "demo_base"
BASE_KIND = BaseKind(
    label="BLIP captioning model", model_type="blip", architecture="BlipForConditionalGeneration", demo=DEMO_BASE,
    rebuild=f"python -m lorakit_caption.make_demo --out {DEMO_BASE}", example="Salesforce/blip-image-captioning-base",
    hint="or the vqa task for BLIP VQA models",
)


@dataclass
class CaptionOptions(TaskOptions):
    """Options of the ``caption`` task.

    * ``trigger``: a word written before every training caption and given as a
      prompt when captioning; empty for none.
    * ``prompt``: conditional-captioning text the caption continues (e.g.
      ``"a picture of"``); it is not part of the returned caption.
    * ``max_new_tokens``: longest caption generated, in tokens.
    * ``num_beams``: beam-search width; 1 is greedy decoding.
    * ``clip``: a CLIP model ("demo", NAME:PRETRAINED for open_clip, or an
      open_clip folder as the Hub holds one) whose
      reference-free CLIPScore is reported beside CIDEr and BLEU; empty: off.
    * ``train_head``: train the text decoder's output head fully and save it
      with the adapter: ``auto`` when the training captions hold words the base
      never says (``lorakit_blip/head.py``), ``always``, or ``never`` (LoRA
      only: a smaller adapter, mixable with others, that cannot learn new
      words). ``--lora.modules_to_save`` overrides it.
    """

    trigger: str = ""
    prompt: str = ""
    max_new_tokens: int = 30
    num_beams: int = 1
    #: CLIP model for the reference-free CLIPScore in evaluation ("demo", NAME:PRETRAINED, a folder); empty: off.
    clip: str = ""
    train_head: str = "auto"

    def __post_init__(self) -> None:
        self.trigger = text_option("trigger", self.trigger)
        self.clip = text_option("clip", self.clip)
        self.prompt = text_option("prompt", self.prompt)
        self.max_new_tokens = whole_number("max_new_tokens", self.max_new_tokens, 1, MAX_NEW_TOKENS)
        self.num_beams = whole_number("num_beams", self.num_beams, 1, MAX_BEAMS)
        self.train_head = checked_choice(self.train_head)


class CaptionTask(Task, CommandLineInputs, WritesSamples, MergedExport):
    """BLIP image captioning (``BlipForConditionalGeneration``).

    Recommended settings (lr 2e-3, batch 16, 20 epochs: held-out CIDEr ~7 on
    the demo, where the generic 1e-3 for 10 epochs reaches ~3) are the
    ``caption`` recipe, ``recipes/caption.yaml``.
    """

    name = "caption"
    description = "Image captioning with BLIP: teach captions a new domain or style"
    options_class = CaptionOptions
    metrics = {"cider": "max", "bleu4": "max"}
    optional_metrics = {"clip_score": "max"}
    metric_options = {"clip_score": "clip"}
    # Attention and MLP of both towers, cross-attention included. Measured on
    # the demo (600 steps, r=8): both towers reach held-out CIDEr 7.3, the
    # text side alone 5.8, the vision side alone 0.15 (a caption style lives
    # in the decoder; new objects need the vision side too).
    lora_targets = ("qkv", "projection", "fc1", "fc2", "query", "key", "value", "dense")
    inputs_help = "image files or folders of them"

    # -- the base model -------------------------------------------------------

    def load_base(self, name: str) -> Base:
        """Load ``name``: ``"demo"``, a local folder, or a Hugging Face hub id."""
        from transformers import BlipForConditionalGeneration, BlipProcessor

        from lorakit_blip.attention import fuse_attention

        model, processor, _ = load_pretrained(name, BASE_KIND, BlipForConditionalGeneration, BlipProcessor)
        fuse_attention(model)
        return Base(model=model, processor=processor, name=name)

    def prepare_base(self, base: Base, data: Data | None) -> Sequence[str]:
        """The decoder head to train fully when ``options.train_head`` asks for
        it, or (``auto``) when the training captions need words the base never
        says: LoRA alone cannot teach them (on the demo, captions of counted
        dots reach held-out CIDEr 0.13 without the head, 7.0 with it). The
        trigger and prompt are given to the model, not learned, so they do not
        count. With no data (an adapter opened for use) nothing is decided."""
        if data is None:
            return list(self.modules_to_save)
        from lorakit_blip.head import head_to_train

        return head_to_train(self.options.train_head, base, [e.text for e in data.examples])

    # -- data -----------------------------------------------------------------

    def load_data(self, path: Path, base: Base | None = None, role: str = "data") -> Data:
        """Read and validate a caption folder (metadata.jsonl/.csv or .txt sidecars),
        with counts of examples, images and words for the adapter manifest.
        Retain examples (the base's old domain) carry no trigger word."""
        import dataclasses

        from lorakit_caption.data import read_caption_folder

        examples = read_caption_folder(Path(path))
        if role == "retain":
            examples = [dataclasses.replace(e, triggered=False) for e in examples]
        return Data(examples, _summary(examples))

    def trigger_words(self) -> list[str]:
        """The trigger word, when one is set."""
        return [self.options.trigger] if self.options.trigger else []

    def collate(self, base: Base, examples: Sequence[Any]) -> dict[str, Any]:
        """Pixel values, caption ids (bos first) and labels (-100 on padding and
        on the trigger/prompt prefix, which the model is given, not asked for)."""
        tokenizer = base.processor.tokenizer
        prefixes = [self.prefix(e.triggered) for e in examples]
        texts = [f"{prefix} {e.text}" if prefix else e.text for prefix, e in zip(prefixes, examples)]
        tokens = tokenizer(texts, padding="longest", truncation=True, max_length=max_length(base), return_tensors="pt")
        input_ids = tokens["input_ids"]
        # generate() starts from the decoder's bos, not the tokenizer's [CLS]:
        # train on what generation will see.
        input_ids[:, 0] = bos_id(base)
        labels = input_ids.masked_fill(tokens["attention_mask"] == 0, -100)
        for row, prefix in enumerate(prefixes):
            labels[row, 1 : 1 + _prefix_length(base, prefix)] = -100
        return {
            "pixel_values": load_pixel_values(base.processor, [e.image for e in examples]),
            "input_ids": input_ids,
            "attention_mask": tokens["attention_mask"],
            "labels": labels,
        }

    # -- training -------------------------------------------------------------

    def loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """BLIP's token cross-entropy (the model shifts labels itself)."""
        return model(**batch).loss

    # -- evaluation and use ---------------------------------------------------

    def evaluate(self, base: Base, model: Any, examples: Sequence[Any]) -> dict[str, float]:
        """CIDEr and BLEU-4 of generated captions against every reference
        caption of each held-out image (each image is captioned once)."""
        from lorakit_caption.metrics import caption_scores

        images, captions, references = self._caption_held_out(base, model, examples)
        scores = caption_scores(captions, references)
        if self.options.clip:
            scores["clip_score"] = sum(self._clip().scores(images, captions)) / len(images)
        return scores

    def write_samples(self, base: Base, model: Any, examples: Sequence[Any], folder: Path) -> None:
        """The first held-out images, each small beside the model's caption and
        the reference captions (``NN.jpg`` + ``NN.txt``), for the run's report."""
        from lorakit_blip.samples import write_picture_samples

        first = set(list(dict.fromkeys(e.image for e in examples))[:_SAMPLES])
        images, captions, references = self._caption_held_out(base, model, [e for e in examples if e.image in first])
        texts = [f"{caption}\nreference: {' | '.join(refs)}" for caption, refs in zip(captions, references)]
        write_picture_samples(Path(folder), images, texts)

    def _caption_held_out(self, base: Base, model: Any,
                          examples: Sequence[Any]) -> tuple[list[str], list[str], list[list[str]]]:
        """Each image of ``examples`` captioned once, with all its reference
        captions: the adapter's domain with its trigger, the old domain without."""
        references: dict[str, list[str]] = {}
        triggered: dict[str, bool] = {}
        for example in examples:
            references.setdefault(example.image, []).append(example.text)
            triggered[example.image] = triggered.get(example.image, False) or example.triggered
        predictions: dict[str, str] = {}
        for flag in (True, False):
            group = [image for image in references if triggered[image] == flag]
            predictions.update(zip(group, (c.text for c in self._generate(base, model, group, self.prefix(flag)))))
        images = list(references)
        return images, [predictions[image] for image in images], [references[image] for image in images]

    def _clip(self) -> Any:
        """The CLIP scorer of ``options.clip``, loaded once (a cache, not run state)."""
        if getattr(self, "_clip_scorer", None) is None:
            from lorakit_caption.clip import ClipScorer

            self._clip_scorer = ClipScorer.load(self.options.clip)
        return self._clip_scorer

    def prediction_inputs(self, inputs: Sequence[str], flags: dict[str, Any]) -> list[Any]:
        """The image files to caption, folders expanded: a missing one is
        said before the base loads (``predict`` decodes and checks each)."""
        return [str(path) for path in _image_paths(inputs)]

    def predict(self, base: Base, model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """Caption image files (a folder stands for the images in it):
        ``[{"image": path, "caption": text}, ...]``."""
        paths = _image_inputs(inputs)
        captions = self._generate(base, model, paths, self.prefix())
        return [{"image": path, "caption": caption.text, **caption.usage_fields()}
                for path, caption in zip(paths, captions)]

    def probe(self, base: Base, model: Any) -> Any:
        """Logits of ``model`` for a fixed-seed noise image and the bos token."""
        import torch

        inputs = to_device({"pixel_values": probe_pixels(base), "input_ids": torch.tensor([[bos_id(base)]])}, model)
        with eval_mode(model), torch.inference_mode():
            logits = model(**inputs).logits
        return logits.float().cpu()

    def save_merged(self, base: Base, model: Any, path: Path) -> None:
        """Save as Hugging Face does (model and processor, safetensors), untying
        the head from the word embeddings when the adapter trained it: a tied
        save would keep only the embeddings and reload the head without its
        new words."""
        from lorakit_blip.head import save_merged

        save_merged(base, model, path)

    # -- helpers --------------------------------------------------------------

    def prefix(self, triggered: bool = True) -> str:
        """What a caption continues: the trigger word (unless off) and the prompt."""
        trigger = self.options.trigger if triggered else ""
        return " ".join(part for part in (trigger, self.options.prompt) if part)

    def _generate(self, base: Base, model: Any, images: Sequence[str], prefix: str) -> list[Generated]:
        """Captions of image files in batches, ``prefix`` given as a prompt."""
        captions: list[Generated] = []
        for chunk in batch_slices(len(images)):
            pixels = load_pixel_values(base.processor, images[chunk])
            captions += [c[0] for c in self.caption_pixels(base, model, pixels, prefix)]
        return captions

    def caption_pixels(self, base: Base, model: Any, pixel_values: Any, prefix: str = "",
                       candidates: int = 1) -> list[list[Generated]]:
        """``candidates`` captions per image of a pixel batch (beam search keeps
        the best beams), ``prefix`` given as a prompt and cut from the output."""
        import torch

        skip = 1 + _prefix_length(base, prefix)  # bos + prefix tokens
        max_new = min(self.options.max_new_tokens, max_length(base) - skip)
        count = len(pixel_values)
        inputs = {"pixel_values": pixel_values}
        if prefix:
            # [CLS] prefix [SEP]: BLIP swaps [CLS] for bos and drops the [SEP].
            inputs["input_ids"] = base.processor.tokenizer([prefix] * count, return_tensors="pt")["input_ids"]
        beams = max(self.options.num_beams, candidates)
        with eval_mode(model), torch.inference_mode():
            output = model.generate(**to_device(inputs, model), max_new_tokens=max_new, num_beams=beams,
                                    num_return_sequences=candidates)
        said = read_generated(base, output[:, skip:], [image_positions(base) + skip] * len(output))
        return [said[i * candidates : (i + 1) * candidates] for i in range(count)]


# -- module helpers ------------------------------------------------------------


def _summary(examples: Sequence[Any]) -> dict[str, Any]:
    """Counts of examples, images and words, for the adapter manifest."""
    words = [caption.split() for caption in (e.text for e in examples)]
    return {
        "examples": len(examples),
        "images": len({e.image for e in examples}),
        "vocabulary": len({w.lower() for ws in words for w in ws}),
        "mean_caption_words": round(sum(map(len, words)) / max(1, len(words)), 2),
    }


def _image_paths(inputs: Sequence[Any]) -> list[Path]:
    """The image files named by ``inputs``, folders expanded, each existing."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            images = [p for p in list_files(item) if is_image(p)]
            if not images:
                raise DataError(f"{item}: a folder with no images in it; lorakit reads {', '.join(IMAGE_SUFFIXES)}")
            paths += images
        elif item.is_file():
            paths.append(item)
        else:
            raise DataError(f"{item}: no such image file or folder; caption reads images (files or folders of "
                            "them), not text")
    return paths


def _image_inputs(inputs: Sequence[Any]) -> list[str]:
    """The image files named by ``inputs``, folders expanded, each checked."""
    paths = _image_paths(inputs)
    for path in paths:
        check_image(path)
    return [str(path) for path in paths]


def _prefix_length(base: Base, prefix: str) -> int:
    if not prefix:
        return 0
    return len(base.processor.tokenizer(prefix, add_special_tokens=False)["input_ids"])

