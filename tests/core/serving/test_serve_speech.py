"""OpenAI's speech API, called with OpenAI's own client against a live server."""

import io

import numpy as np
import pytest
import soundfile as sf



@pytest.fixture(scope="module")
def client(live):
    from openai import OpenAI

    return OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)


def speak(client, **fields):
    fields = {"model": "tts-1", "voice": "kauko", "input": "Hello there.", "response_format": "wav", **fields}
    return client.audio.speech.create(**fields).read()


def wav(data):
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return audio, rate


def test_a_plain_openai_client_speaks_in_the_cloned_voice(client, service):
    """The adapter's voice is what the adapter alone speaks (as lorakit predict
    would), not the base's: the same sentence through the task directly."""
    from lorakit.runs import predict

    audio, rate = wav(speak(client))
    expected = predict("voice-clone", ["Hello there."], str(service.adapters["kauko"].folder))[0]
    assert rate == expected["sample_rate"] == 16000
    assert audio.shape == expected["audio"].shape
    assert np.abs(audio - expected["audio"]).max() < 2e-4  # 16-bit rounding of the wav
    base_voice, _ = wav(speak(client, voice="low-male"))  # the slot the adapter speaks through, without it
    assert base_voice.shape != audio.shape or np.abs(base_voice - audio).max() > 0.05


def test_speed_and_every_response_format(client):
    normal, rate = wav(speak(client))
    fast, _ = wav(speak(client, speed=2.0))
    assert 0.4 < len(fast) / len(normal) < 0.7  # durations are whole frames, rounded up
    for fmt in ("flac", "mp3", "opus"):
        decoded, decoded_rate = wav(speak(client, response_format=fmt))
        assert decoded_rate == {"flac": rate, "mp3": rate, "opus": 48000}[fmt]
        assert abs(len(decoded) / decoded_rate - len(normal) / rate) < 0.1
    pcm = speak(client, response_format="pcm")  # OpenAI's raw 16-bit mono at 24 kHz
    assert abs(len(pcm) / 2 / 24000 - len(normal) / rate) < 0.01


def test_base_speakers_are_voices_too(client):
    high, _ = wav(speak(client, model="demo", voice="high-female"))
    low, _ = wav(speak(client, model="demo", voice="low-male"))
    assert high.shape != low.shape or np.abs(high - low).max() > 0.05


@pytest.mark.parametrize("fields, param, text", [
    ({"voice": "alloy"}, "voice", "no voice 'alloy'"),
    ({"input": "   "}, "input", "blank"),
    ({"input": "x" * 5000}, "input", "at most 4096"),
    ({"model": "other-base"}, "model", "trained on base 'demo'"),
    ({"response_format": "ogg"}, "response_format", "'aac'"),
    ({"speed": 9}, "speed", "less than or equal to 4"),
    ({"extra_body": {"adapters": [{"name": "caption-a"}]}}, "adapters", "not a 'voice-clone' one"),
    ({"voice": "caption-a"}, "voice", "not a 'voice-clone' one"),  # its param was adapters, which was not sent
    ({"extra_body": {"adapters": [{"name": "kauko", "weight": "much"}]}}, "adapters.0.weight", "number"),
])
def test_bad_requests_are_400s_naming_the_field(client, fields, param, text):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as caught:
        speak(client, **fields)
    error = caught.value.body
    assert error["param"] == param and text in error["message"], error


def test_an_adapter_that_is_not_served_is_a_404_naming_it(client):
    from openai import NotFoundError

    with pytest.raises(NotFoundError) as caught:
        speak(client, extra_body={"adapters": [{"name": "kauk0"}]})
    error = caught.value.body
    assert error["param"] == "adapters" and "no adapter named 'kauk0'" in error["message"], error


def test_a_character_the_model_cannot_speak_is_a_400(client):
    from openai import BadRequestError

    with pytest.raises(BadRequestError, match="cannot") as caught:
        speak(client, input="Hello 你好")
    error = caught.value.body
    assert error["param"] == "input" and "'你'" in error["message"], error
    assert not error["message"].startswith("--"), error  # no command-line flag: the field is in param
    assert len(wav(speak(client))[0]) > 0  # the server still speaks


def test_speech_clients_list_the_voices_and_models_each_of_which_speaks(live, client):
    """Open WebUI fills its voice and model menus from these two lists."""
    import httpx

    voices = httpx.get(f"{live.url}/v1/audio/voices").json()["voices"]
    ids = [v["id"] for v in voices]
    assert {"kauko", "calm", "low-male", "high-female", "klatt"} == set(ids) and len(ids) == len(set(ids))
    assert {v["id"]: v["name"] for v in voices}["kauko"] == "kauko (cloned on demo)"
    models = [m["id"] for m in httpx.get(f"{live.url}/v1/audio/models").json()["models"]]
    assert models == ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "voice-clone/demo"]
    spoken = {voice: wav(speak(client, voice=voice, model=models[-1]))[0] for voice in ids}
    assert all(len(audio) > 1000 for audio in spoken.values())
    assert len({audio.tobytes() for audio in spoken.values()}) == len(ids)  # five voices, five different clips
