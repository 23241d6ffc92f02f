"""The ``textclass`` task: LoRA for sequence classification (DistilBERT class).

Its recommended settings (learning rate, batch size, epochs) are data, in the
recipe named after the task: ``recipes/textclass.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lorakit.api import Base, BaseModelError, CommandLineInputs, Data, Task, TaskOptions, to_device, whole_number

DEMO_BASE = Path(__file__).parent / "demo_base"
BATCH = 64


@dataclass
class TextClassOptions(TaskOptions):
    """``max_length``: longest input in tokens (longer texts are truncated)."""

    max_length: int = 128

    def __post_init__(self):
        self.max_length = whole_number("max_length", self.max_length, 8, 4096)


class TextClassTask(Task, CommandLineInputs):
    name = "textclass"
    description = "Text classification (e.g. sentiment) with DistilBERT-class models"
    options_class = TextClassOptions
    metrics = {"accuracy": "max", "macro_f1": "max"}
    # DistilBERT's attention and feed-forward layers; the classification head
    # is new for every dataset, so it trains fully (as peft's SEQ_CLS does).
    lora_targets = ("q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2")
    modules_to_save = ("pre_classifier", "classifier")
    # `lorakit predict textclass` takes texts: positional or --text.
    inputs_help = 'texts to classify, e.g. --text "what a gripping film"'

    def load_base(self, name: str) -> Base:
        import pickle

        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        source = str(DEMO_BASE) if name == "demo" else name
        try:
            model = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise BaseModelError(
                f"cannot load the base {name!r} ({type(exc).__name__}); pass demo, a local folder written by "
                "save_pretrained, or a hub id such as distilbert-base-uncased-finetuned-sst-2-english that is "
                "cached or reachable online") from None
        except pickle.UnpicklingError:  # torch's weights_only loading refused a pytorch_model.bin
            weights = ", ".join(map(str, Path(source).glob("*.bin"))) or f"the weights of {name!r}"
            raise BaseModelError(f"{weights} holds code or Python objects that lorakit will not load; re-save the "
                                 "model from a trusted copy with save_pretrained, which writes safetensors") from None
        return Base(model=model, processor=tokenizer, name=name)

    def load_data(self, path: Path, base: Base, role: str = "data") -> Data:
        from lorakit_textclass.data import read_folder

        examples = read_folder(Path(path), list(base.model.config.id2label.values()))
        counts: dict[str, int] = {}
        for example in examples:
            counts[example.label] = counts.get(example.label, 0) + 1
        return Data(examples, {"examples": len(examples), "labels": counts})

    def collate(self, base: Base, examples: Sequence[Any]) -> dict[str, Any]:
        import torch

        label2id = base.model.config.label2id
        tokens = base.processor([e.text for e in examples], padding=True, truncation=True,
                                max_length=self.options.max_length, return_tensors="pt")
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"],
                "labels": torch.tensor([label2id[e.label] for e in examples])}

    def loss(self, base: Base, model: Any, batch: dict[str, Any]) -> Any:
        return model(**batch).loss

    def _logits(self, base: Base, model: Any, texts: Sequence[str]) -> Any:
        import torch

        outputs = []
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH):
                tokens = base.processor(list(texts[start:start + BATCH]), padding=True, truncation=True,
                                        max_length=self.options.max_length, return_tensors="pt")
                inputs = to_device({"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}, model)
                outputs.append(model(**inputs).logits.float().cpu())
        return torch.cat(outputs)

    def evaluate(self, base: Base, model: Any, examples: Sequence[Any]) -> dict[str, float]:
        predicted = self._logits(base, model, [e.text for e in examples]).argmax(-1).tolist()
        label2id = base.model.config.label2id
        truth = [label2id[e.label] for e in examples]
        accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
        f1s = []
        for label in set(truth):
            tp = sum(p == t == label for p, t in zip(predicted, truth))
            fp = sum(p == label != t for p, t in zip(predicted, truth))
            fn = sum(t == label != p for p, t in zip(predicted, truth))
            f1s.append(2 * tp / max(1, 2 * tp + fp + fn))
        return {"accuracy": accuracy, "macro_f1": sum(f1s) / len(f1s)}

    def predict(self, base: Base, model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        probabilities = self._logits(base, model, list(inputs)).softmax(-1)
        id2label = base.model.config.id2label
        return [{"text": text, "label": id2label[int(p.argmax())], "score": round(float(p.max()), 4)}
                for text, p in zip(inputs, probabilities)]

    def probe(self, base: Base, model: Any) -> Any:
        import torch

        vocab = base.model.config.vocab_size
        ids = torch.arange(16).reshape(2, 8) * 7 % vocab
        with torch.inference_mode():
            return model(input_ids=to_device(ids, model)).logits.float().cpu()
