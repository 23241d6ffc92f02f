"""Served folders that change while the server runs: an adapter rewritten in
place replaces its old version everywhere, one whose folder is gone is unloaded."""

import shutil

import torch

from serving_support import probe, rewrite_adapter


def test_a_rewritten_adapter_replaces_its_merged_copy_and_a_removed_one_is_unloaded(service, served):
    loaded = service.workers[("caption", "demo")].loaded
    shutil.copytree(served / "caption-a", served / "swap")
    service.refresh(force=True)
    in_model = set(loaded.model.peft_config)
    mix = (("swap", 1.0),)
    loaded.hot_limit = 1
    try:
        before = probe(service, "caption", mix)
        assert torch.allclose(probe(service, "caption", mix), before, atol=1e-4) and mix in loaded.hot
        rewrite_adapter(served / "swap", served / "styles" / "caption-b")
        service.refresh(force=True)
        assert mix not in loaded.hot  # the merged copy of the old version is gone with it
        after = probe(service, "caption", mix)
        assert torch.equal(after, probe(service, "caption", (("styles/caption-b", 1.0),)))
        assert not torch.allclose(after, before, atol=1e-3)
        assert len(loaded.model.peft_config) == len(in_model)  # the old version's weights went out
    finally:
        loaded.hot_limit = 0
        loaded.hot.clear()
        loaded.uses.clear()
    shutil.rmtree(served / "swap")
    service.refresh(force=True)
    assert "swap" not in loaded.adapters and "swap" not in loaded.refused
    assert len(loaded.model.peft_config) == len(in_model) - 1


def test_removing_the_last_adapter_leaves_the_plain_base(served, tmp_path):
    from peft import PeftModel

    from lorakit.serving.service import Service

    shutil.copytree(served / "caption-a", tmp_path / "only")
    service = Service([tmp_path])
    service.start()
    try:
        loaded = service.workers[("caption", "demo")].loaded
        adapted = probe(service, "caption", (("only", 1.0),))
        with_adapter_off = probe(service, "caption", ())
        assert isinstance(loaded.model, PeftModel)
        shutil.rmtree(tmp_path / "only")
        service.refresh(force=True)
        assert not isinstance(loaded.model, PeftModel) and not loaded.adapters
        assert torch.equal(probe(service, "caption", ()), with_adapter_off)  # the base, unchanged
        assert not torch.allclose(adapted, with_adapter_off, atol=1e-3)
        shutil.copytree(served / "caption-a", tmp_path / "only")  # and it can come back
        service.refresh(force=True)
        assert torch.equal(probe(service, "caption", (("only", 1.0),)), adapted)
    finally:
        service.stop()
