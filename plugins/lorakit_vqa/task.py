"""The ``vqa`` task: LoRA adapters for BLIP visual question answering.

An adapter teaches a BLIP VQA model to answer questions about a new domain's
images (inspection photos, scans, products) from a folder of images and
``questions.jsonl`` (see ``data.py``). LoRA goes on the linear layers of the
vision tower, the question encoder and the answer decoder. An answer word the
base has never said cannot be learned by LoRA alone (the output head ranks it
far below every word it knows), so the decoder head is then trained fully
and saved with the adapter; ``options.train_head`` decides when (see
``lorakit_blip/head.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lorakit.api import (
    Base,
    CommandLineInputs,
    Data,
    MergedExport,
    Task,
    TaskOptions,
    WritesSamples,
    eval_mode,
    load_images,
    to_device,
    whole_number,
)
from lorakit_blip import batch_slices, bos_id, load_pixel_values, max_length, probe_pixels
from lorakit_blip.generated import Generated, image_positions, read_generated
from lorakit_blip.head import checked_choice

_PROBE_QUESTION, _PROBE_ANSWER = "what is in the picture?", "yes"
#: Held-out questions ``write_samples`` shows.
_SAMPLES = 24


@dataclass
class VqaOptions(TaskOptions):
    """Options of the ``vqa`` task.

    * ``max_answer_tokens``: longest answer generated, in tokens.
    * ``num_beams``: beam-search width; 1 is greedy decoding.
    * ``train_head``: train the answer decoder's output head fully and save it
      with the adapter (``text_decoder.cls.predictions``): ``auto`` when the
      training answers hold words the base does not say (``lorakit_blip/head.py``),
      ``always``, or ``never`` (LoRA only: a smaller adapter that cannot
      learn new answer words). ``--lora.modules_to_save`` overrides it.
    """

    max_answer_tokens: int = 12
    num_beams: int = 1
    train_head: str = "auto"

    def __post_init__(self) -> None:
        self.max_answer_tokens = whole_number("max_answer_tokens", self.max_answer_tokens, 1, 64)
        self.num_beams = whole_number("num_beams", self.num_beams, 1, 16)
        self.train_head = checked_choice(self.train_head)


class VqaTask(Task, CommandLineInputs, WritesSamples, MergedExport):
    """BLIP visual question answering (``BlipForQuestionAnswering``).

    Recommended settings are the ``vqa`` recipe (``recipes/vqa.yaml``).
    Measured on the demo (``recipes/vqa-demo.yaml``, 300 steps, ~40 s on one
    core): held-out VQA accuracy 0.03 -> 0.51, retain 0.76 -> 0.64 with 50%
    replay (seeds 1 and 2: 0.62 and 0.57). r=8 fits the training questions
    more closely for no held-out gain (0.46, retain 0.64).
    """

    name = "vqa"
    description = "Visual question answering with BLIP: teach answers about a new domain's images"
    options_class = VqaOptions
    metrics = {"vqa_accuracy": "max", "exact_match": "max"}
    # Attention and MLP of the vision tower, the question encoder and the
    # answer decoder (self- and cross-attention). A regex, so that the head's
    # own ``transform.dense`` stays out: it is trained whole when new words
    # need it, and LoRA inside a fully trained module would be trained twice.
    lora_targets = (r"(vision_model\..*\.(qkv|projection|fc1|fc2)"
                    r"|text_encoder\..*\.(query|key|value|dense)"
                    r"|text_decoder\.bert\..*\.(query|key|value|dense))")
    input_flags = ("image", "question", "questions")
    inputs_help = "--image FILE --question TEXT, or --questions FILE"

    # -- the base model -------------------------------------------------------

    def load_base(self, name: str) -> Base:
        """Load ``name``: ``"demo"``, a local folder, or a Hugging Face hub id."""
        from lorakit_vqa.loading import load_vqa_base

        return load_vqa_base(name)

    def prepare_base(self, base: Base, data: Data | None) -> Sequence[str]:
        """The decoder head to train fully when ``options.train_head`` asks for
        it, or (``auto``) when the training answers need tokens the base does
        not emit. The base itself is not changed, and an opened adapter names
        its own trained modules, so with no data (an adapter opened for use)
        there is nothing to decide."""
        if data is None:
            return list(self.modules_to_save)
        from lorakit_blip.head import head_to_train

        return head_to_train(self.options.train_head, base, [a for e in data.examples for a in e.answers])

    # -- data -----------------------------------------------------------------

    def load_data(self, path: Path, base: Base | None = None, role: str = "data") -> Data:
        """Read and validate a VQA folder (images + questions.jsonl), with counts
        of questions, images and answers for the adapter manifest. Retain
        examples (the base's old domain) are read the same way."""
        from lorakit_vqa.data import read_vqa_folder
        from lorakit_vqa.metrics import majority_answer

        examples = read_vqa_folder(Path(path))
        return Data(examples, {
            "examples": len(examples),
            "images": len({e.image for e in examples}),
            "several_answers": sum(len(e.answers) > 1 for e in examples),
            "answer_vocabulary": len({majority_answer(e.answers) for e in examples}),
        })

    def collate(self, base: Base, examples: Sequence[Any]) -> dict[str, Any]:
        """Pixel values, question ids, decoder inputs (bos first, padding id on
        padding) and labels (-100 on padding only). The training answer of a
        question with several references is their majority answer."""
        from lorakit_vqa.batch import encode_batch

        answers = [_training_answer(e.answers) for e in examples]
        return encode_batch(base.processor, load_images([e.image for e in examples]), [e.question for e in examples],
                            answers, bos_id(base), max_length(base), self.options.max_answer_tokens + 2)

    # -- training -------------------------------------------------------------

    def loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        """BLIP's answer cross-entropy (the model shifts labels itself)."""
        return model(**batch).loss

    # -- evaluation and use ---------------------------------------------------

    def evaluate(self, base: Base, model: Any, examples: Sequence[Any]) -> dict[str, float]:
        """VQA accuracy and exact match of generated answers against every
        reference answer of each held-out question."""
        from lorakit_vqa.metrics import vqa_scores

        answers = self._answer(base, model, [e.image for e in examples], [e.question for e in examples])
        return vqa_scores([a.text for a in answers], [e.answers for e in examples])

    def prediction_inputs(self, inputs: Sequence[str], flags: dict[str, Any]) -> list[Any]:
        """``--image IMG --question Q`` (repeatable, paired; one question may go
        with several images, also given as positional paths) and
        ``--questions FILE.jsonl``, into ``{"image", "question"}`` records;
        a missing image is said before the base loads."""
        from lorakit_vqa.inputs import check_records, command_line_questions

        return check_records(command_line_questions(inputs, flags), decode=False)

    def predict(self, base: Base, model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """Answer ``{"image": path, "question": text}`` records:
        ``[{"image", "question", "answer"}, ...]``."""
        from lorakit_vqa.inputs import check_records

        records = check_records(inputs)
        answers = self._answer(base, model, [r["image"] for r in records], [r["question"] for r in records])
        return [{"image": r["image"], "question": r["question"], "answer": a.text, **a.usage_fields()}
                for r, a in zip(records, answers)]

    def write_samples(self, base: Base, model: Any, examples: Sequence[Any], folder: Path) -> None:
        """The first held-out questions, each with its image (small), the
        model's answer and the references (``NN.jpg`` + ``NN.txt``), to look at
        side by side with the other model's in the run's report."""
        from lorakit_blip.samples import write_picture_samples

        shown = list(examples[:_SAMPLES])
        answers = self._answer(base, model, [e.image for e in shown], [e.question for e in shown])
        texts = [f"Q: {e.question}\nA: {a.text}\nreference: {' | '.join(e.answers)}" for e, a in zip(shown, answers)]
        write_picture_samples(Path(folder), [e.image for e in shown], texts)

    def probe(self, base: Base, model: Any) -> Any:
        """Answer logits of ``model`` for a fixed-seed noise image, a fixed
        question and a fixed answer (BLIP VQA's forward returns no logits, so
        they are read from the decoder itself)."""
        import torch

        from lorakit_vqa.answering import answer_logits
        from lorakit_vqa.batch import encode_answers, encode_questions

        batch = {"pixel_values": probe_pixels(base),
                 **encode_questions(base.processor, [_PROBE_QUESTION], max_length(base)),
                 **encode_answers(base.processor, [_PROBE_ANSWER], bos_id(base), max_length(base))}
        with eval_mode(model), torch.inference_mode():
            return answer_logits(model, to_device(batch, model)).float().cpu()

    def save_merged(self, base: Base, model: Any, path: Path) -> None:
        """Save as Hugging Face does (model and processor, safetensors), untying
        the answer head from the word embeddings when the adapter trained it:
        a tied save would keep only the embeddings and reload the head without
        its new words."""
        from lorakit_blip.head import save_merged

        save_merged(base, model, path)

    # -- helpers --------------------------------------------------------------

    def _answer(self, base: Base, model: Any, images: Sequence[str], questions: Sequence[str]) -> list[Generated]:
        """Generated answers to ``questions`` about ``images``, in batches."""
        import torch

        from lorakit_vqa.answering import generate_answers
        from lorakit_vqa.batch import encode_questions

        answers: list[Generated] = []
        with eval_mode(model), torch.inference_mode():
            for chunk in batch_slices(len(images)):
                batch = {"pixel_values": load_pixel_values(base.processor, images[chunk]),
                         **encode_questions(base.processor, questions[chunk], max_length(base))}
                output = generate_answers(model, to_device(batch, model), self.options.max_answer_tokens,
                                          self.options.num_beams)
                # The model reads the image, the question and the decoder's bos.
                read = [image_positions(base) + int(n) + 1 for n in batch["attention_mask"].sum(dim=1)]
                answers += read_generated(base, output[:, 1:], read)
        return answers


# -- module helpers ------------------------------------------------------------


def _training_answer(answers: Sequence[str]) -> str:
    """The answer a question is trained on: the reference given most often
    (as an annotator wrote it, not in normalised form)."""
    from lorakit_vqa.metrics import majority_answer, normalize_answer

    if len(answers) == 1:
        return answers[0]
    best = majority_answer(answers)
    return next(a for a in answers if normalize_answer(a) == best)
