"""The GAN step through the task: LoRA weights and the discriminator train,
nothing else; each loss reaches only its own group."""

import copy

import torch
from voice_speakers import write_speaker

from lorakit.config import LoraSettings
from lorakit.lora import inject
from lorakit_voice.task import VoiceCloneTask, VoiceOptions


def test_gan_step_trains_lora_and_discriminator_only(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "We found the old map."])
    task = VoiceCloneTask(VoiceOptions(min_total_seconds=2, slot="klatt"))
    base = copy.copy(demo_base)
    base.model = copy.deepcopy(demo_base.model)
    batch = task.collate(base, task.load_data(folder, base).examples)
    model = inject(base.model, LoraSettings(r=4), task.lora_targets, [])
    task.prepare_training(base, model)
    settings = task.optimizer_groups(base, model)
    groups = {name: group.params for name, group in settings.items()}
    assert list(groups) == ["discriminator", "generator"]  # the order they step in
    # The discriminator trains with coqui's settings, the LoRA with the run's lr.
    assert (settings["discriminator"].lr, settings["discriminator"].betas) == (2e-4, (0.8, 0.99))
    assert settings["generator"].lr is None and settings["generator"].betas is None
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for group in groups.values() for p in group}
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(".disc." in names[id(p)] for p in groups["discriminator"])
    assert all("lora_" in names[id(p)] for p in groups["generator"])

    steps = task.training_step(base, model, batch)
    group, loss = next(steps)
    assert group == "discriminator"
    loss.backward(inputs=groups["discriminator"])
    group, loss = next(steps)
    assert group == "generator" and torch.isfinite(loss)
    for p in groups["discriminator"]:
        p.grad = None
    # The core back-propagates each loss into its own group only: coqui's
    # generator loss would otherwise leave gradients in the discriminator.
    loss.backward(inputs=groups["generator"])
    assert all(p.grad is None for p in groups["discriminator"])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups["generator"])
    assert next(steps, None) is None


def test_validation_loss_is_repeatable(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here."])
    task = VoiceCloneTask(VoiceOptions(min_total_seconds=1, slot="klatt"))
    batch = task.collate(demo_base, task.load_data(folder, demo_base).examples)
    with torch.no_grad():
        first = task.validation_loss(demo_base, demo_base.model, batch)
        second = task.validation_loss(demo_base, demo_base.model, batch)
    assert first.item() == second.item() and 0 < first.item() < 10

