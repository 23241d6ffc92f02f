"""VITS's generator losses without the discriminator.

coqui's ``train_step`` always runs the discriminator; its period
discriminators are most of a CPU step. Pretraining the demo starts without
them, and validation needs only the reconstruction, so both use this.
"""

from __future__ import annotations

from typing import Any


def reconstruct(vits: Any, batch: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    """The generator's training forward pass on ``batch`` and the log-mels of
    the real and the generated segment: ``(outputs, real_mel, generated_mel)``."""
    from TTS.tts.models.vits import segment, wav_to_mel

    audio = vits.config.audio
    aux = {"speaker_ids": batch["speaker_ids"], "d_vectors": None, "language_ids": None}
    outputs = vits.forward(batch["tokens"], batch["token_lens"], batch["spec"], batch["spec_lens"], batch["waveform"],
                           aux_input=aux)
    real = segment(batch["mel"].float(), outputs["slice_ids"], vits.spec_segment_size, pad_short=True)
    generated = wav_to_mel(outputs["model_outputs"].float(), n_fft=audio.fft_size, sample_rate=audio.sample_rate,
                           num_mels=audio.num_mels, hop_length=audio.hop_length, win_length=audio.win_length,
                           fmin=audio.mel_fmin, fmax=audio.mel_fmax, center=False)
    return outputs, real, generated


def generator_losses(vits: Any, batch: dict[str, Any], criterion: Any) -> dict[str, Any]:
    """coqui's generator loss terms (mel L1, KL, duration) with the adversarial
    and feature-matching terms left out (``criterion``: ``VitsGeneratorLoss``)."""
    outputs, real, generated = reconstruct(vits, batch)
    return criterion(mel_slice=real, mel_slice_hat=generated, z_p=outputs["z_p"].float(),
                     logs_q=outputs["logs_q"].float(), m_p=outputs["m_p"].float(), logs_p=outputs["logs_p"].float(),
                     z_len=batch["spec_lens"], scores_disc_fake=[], feats_disc_fake=[], feats_disc_real=[],
                     loss_duration=outputs["loss_duration"])
