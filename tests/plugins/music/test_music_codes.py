"""Delay-pattern labels on a hand-checked case, and the on-disk code cache."""

import torch

from lorakit_music.codes import CodeCache, delay_labels

PAD = 128


def test_delay_labels_shift_codebook_k_by_k_steps_and_pad_the_rest(demo_base):
    decoder = demo_base.model.decoder
    assert decoder.num_codebooks == 4 and decoder.config.pad_token_id == PAD
    codes = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]])
    labels = delay_labels(decoder, codes)
    P = PAD
    assert labels.t().tolist() == [
        [1, 2, 3, P, P, P],
        [P, 4, 5, 6, P, P],
        [P, P, 7, 8, 9, P],
        [P, P, P, 10, 11, 12],
    ]


def test_the_model_scores_exactly_the_delayed_codes(demo_base):
    """The loss counts T codes per codebook: pad labels cost nothing, so a
    window's loss does not depend on what the padding would predict."""
    model = demo_base.model
    tokens = demo_base.processor.tokenizer(["calm piano in c major"], return_tensors="pt")
    codes = torch.randint(0, 128, (4, 20), generator=torch.Generator().manual_seed(0))
    labels = delay_labels(model.decoder, codes)[None]
    with torch.inference_mode():
        logits = model(**tokens, labels=labels).logits  # (K, steps, vocabulary)
        loss = model(**tokens, labels=labels).loss
    per_codebook = []
    for k in range(4):
        steps = torch.arange(k, k + 20)
        per_codebook.append(torch.nn.functional.cross_entropy(logits[k, steps], codes[k]))
    assert torch.allclose(loss, torch.stack(per_codebook).mean(), atol=1e-5)


def test_cache_round_trips_codes_and_treats_a_torn_file_as_missing(tmp_path):
    cache = CodeCache(tmp_path)
    track = tmp_path / "a.wav"
    track.write_bytes(b"some audio bytes")
    key = cache.key(track, "codec-1", "settings-1")
    assert cache.get(key) is None
    codes = torch.randint(0, 2048, (3, 4, 50))
    cache.put(key, codes)
    assert torch.equal(cache.get(key), codes)
    assert not list(tmp_path.rglob(".*"))  # no temporary files left
    next(tmp_path.rglob("*.safetensors")).write_bytes(b"torn")
    assert cache.get(key) is None


def test_cache_key_follows_content_codec_and_settings(tmp_path):
    cache = CodeCache(tmp_path)
    track = tmp_path / "a.wav"
    track.write_bytes(b"one")
    key = cache.key(track, "codec-1", "settings-1")
    moved = tmp_path / "renamed.wav"
    moved.write_bytes(b"one")
    assert cache.key(moved, "codec-1", "settings-1") == key  # content, not the name
    assert cache.key(track, "codec-2", "settings-1") != key
    assert cache.key(track, "codec-1", "settings-2") != key
    track.write_bytes(b"two")
    assert cache.key(track, "codec-1", "settings-1") != key


def stereo_musicgen(demo_base):
    """A stereo MusicGen (8 codebooks: left and right interleaved) around the
    demo's mono codec, as facebook/musicgen-stereo-* are built."""
    from transformers import MusicgenConfig, MusicgenForConditionalGeneration

    config = demo_base.model.config.to_dict()
    config["decoder"].update(audio_channels=2, num_codebooks=8)
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(MusicgenConfig(**{k: config[k] for k in ("text_encoder", "audio_encoder",
                                                                                     "decoder")}))
    model.audio_encoder.load_state_dict(demo_base.model.audio_encoder.state_dict())
    model.generation_config.update(pad_token_id=PAD, bos_token_id=PAD, decoder_start_token_id=PAD, max_length=100)
    return model.eval()


def test_stereo_labels_delay_left_and_right_codebooks_alike(demo_base):
    decoder = stereo_musicgen(demo_base).decoder
    codes = torch.arange(1, 25).reshape(8, 3)  # rows: L0 R0 L1 R1 L2 R2 L3 R3
    P = PAD
    assert delay_labels(decoder, codes).t().tolist() == [
        [1, 2, 3, P, P, P], [4, 5, 6, P, P, P],
        [P, 7, 8, 9, P, P], [P, 10, 11, 12, P, P],
        [P, P, 13, 14, 15, P], [P, P, 16, 17, 18, P],
        [P, P, P, 19, 20, 21], [P, P, P, 22, 23, 24],
    ]


def test_stereo_bases_get_the_mono_codes_on_both_channels_and_generate_two(demo_base):
    import numpy as np

    from lorakit_music import synthetic
    from lorakit_music.codes import encode_windows
    from lorakit_music.generation import Sampling, generate

    model = stereo_musicgen(demo_base)
    audio, _ = synthetic.render_track("chiptune", 2.0, np.random.default_rng(0))
    mono = encode_windows(demo_base.model.audio_encoder, audio[None], 4)
    stereo = encode_windows(model.audio_encoder, audio[None], 8)
    assert torch.equal(stereo[:, 0::2], mono) and torch.equal(stereo[:, 1::2], mono)
    tokens = demo_base.processor.tokenizer(["retro chiptune melody"], return_tensors="pt")
    loss = model(**tokens, labels=delay_labels(model.decoder, stereo[0])[None]).loss
    assert torch.isfinite(loss)
    clip, rate = generate(model, demo_base.processor, ["retro chiptune melody"], Sampling(seconds=0.4))
    assert clip.shape == (1, 2, int(0.4 * rate))
