"""Build the demo base: a tiny DistilBERT that has read reviews of products and
movies (masked-LM) but learnt sentiment on products only; a word-level
WordPiece vocabulary made offline.

    python -m lorakit_textclass.make_demo --out lorakit_textclass/demo_base [--quick]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from lorakit_textclass.synthetic import LABELS, reviews, vocabulary

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build(out: Path, steps: int, seed: int = 0) -> None:
    """Pretrain like a real DistilBERT, in miniature: masked-LM on text of both
    domains (so the base *knows the words* of movie reviews), then sentiment
    fine-tuning on product reviews only (so it has never learnt to *judge*
    a movie)."""
    import torch
    from transformers import BertTokenizer, DistilBertConfig, DistilBertForMaskedLM, DistilBertForSequenceClassification

    torch.manual_seed(seed)
    vocab = {token: i for i, token in enumerate(SPECIAL + vocabulary())}
    tokenizer = BertTokenizer(vocab=vocab, model_input_names=["input_ids", "attention_mask"])
    config = DistilBertConfig(vocab_size=len(vocab), dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                              max_position_embeddings=64, num_labels=2, pad_token_id=0,
                              id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    rng = random.Random(seed)
    corpus = [r["text"] for domain in ("products", "movies") for r in reviews(domain, 2000, seed=seed + 10)]
    language = DistilBertForMaskedLM(config)
    _train(language, steps, lambda: _masked_batch(tokenizer, rng.sample(corpus, 32)))
    classifier = DistilBertForSequenceClassification(config)
    classifier.distilbert.load_state_dict(language.distilbert.state_dict())
    labelled = reviews("products", 2000, seed=seed)

    def sentiment_batch():
        batch = rng.sample(labelled, 32)
        tokens = tokenizer([r["text"] for r in batch], padding=True, return_tensors="pt")
        return {**tokens, "labels": torch.tensor([LABELS.index(r["label"]) for r in batch])}

    loss = _train(classifier, max(1, steps // 2), sentiment_batch)
    out.mkdir(parents=True, exist_ok=True)
    classifier.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    print(f"saved the demo base to {out} (last sentiment loss {loss:.4f})")


def _train(model, steps: int, next_batch) -> float:
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        loss = model(**next_batch()).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def _masked_batch(tokenizer, texts: list[str]) -> dict:
    """Mask 15% of the word tokens; only those count in the loss."""
    import torch

    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    ids = tokens["input_ids"]
    special = (ids == tokenizer.pad_token_id) | (ids == tokenizer.cls_token_id) | (ids == tokenizer.sep_token_id)
    mask = (torch.rand(ids.shape) < 0.15) & ~special
    labels = ids.masked_fill(~mask, -100)
    return {"input_ids": ids.masked_fill(mask, tokenizer.mask_token_id), "attention_mask": tokens["attention_mask"], "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a few steps only (to test the script)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    build(args.out, steps=4 if args.quick else 600)


if __name__ == "__main__":
    main()
