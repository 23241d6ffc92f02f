"""``lorakit.testing.random_adapter``: the stand-in adapters of serving tests
and benchmarks are the same for the same seed, in any process."""

import torch
from safetensors.torch import load_file

from lorakit.testing import random_adapter


def _weights(run_dir):
    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def test_the_same_seed_gives_the_same_adapter_and_the_global_generator_is_left_alone(tmp_path):
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = _weights(random_adapter("caption", "demo", tmp_path / "a", 7, targets=["query", "value"]))
    assert torch.equal(torch.rand(3), expected_draw)  # the caller's random stream is not consumed
    torch.rand(100)  # another state of the global generator: must not matter
    again = _weights(random_adapter("caption", "demo", tmp_path / "b", 7, targets=["query", "value"]))
    other = _weights(random_adapter("caption", "demo", tmp_path / "c", 8, targets=["query", "value"]))
    assert first.keys() == again.keys() and any("lora_A" in name for name in first)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not any(torch.equal(first[name], other[name]) for name in first if "lora_A" in name)
