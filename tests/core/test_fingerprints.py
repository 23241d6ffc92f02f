"""A base's fingerprint is remembered per weights folder, not rehashed on every command."""

import os

import pytest

import lorakit.fingerprints as fingerprints
from lorakit.task import Base


@pytest.fixture
def bert_folder(tmp_path):
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    BertModel(config).save_pretrained(tmp_path / "bert")
    return tmp_path / "bert"


@pytest.fixture
def hashes(monkeypatch, tmp_path):
    """Counts full hashes of a model's weights; the cache in a fresh folder."""
    monkeypatch.setenv("LORAKIT_CACHE", str(tmp_path / "cache"))
    calls = []
    original = fingerprints.fingerprint
    monkeypatch.setattr(fingerprints, "fingerprint", lambda model: calls.append(1) or original(model))
    return calls


def _load(folder):
    from transformers import BertModel

    return Base(model=BertModel.from_pretrained(folder), name=str(folder))


def test_a_folder_s_fingerprint_is_hashed_once_and_again_when_a_file_changes(bert_folder, hashes):
    first = fingerprints.base_fingerprint(_load(bert_folder), "textclass")
    again = fingerprints.base_fingerprint(_load(bert_folder), "textclass")
    assert first == again and len(hashes) == 1
    assert first == fingerprints.fingerprint(_load(bert_folder).model)  # the weights' own fingerprint
    hashes.clear()
    weights = bert_folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000_000))
    assert fingerprints.base_fingerprint(_load(bert_folder), "textclass") == first
    assert len(hashes) == 1  # a newer file is hashed again (same bytes here: same fingerprint)
    assert fingerprints.base_fingerprint(_load(bert_folder), "caption") == first
    assert len(hashes) == 2  # another task may load the folder differently: its own entry


def test_a_base_without_a_folder_is_hashed_every_time(hashes):
    import torch

    base = Base(model=torch.nn.Linear(3, 2))
    assert fingerprints.base_fingerprint(base, "toy") == fingerprints.base_fingerprint(base, "toy")
    assert len(hashes) == 2
