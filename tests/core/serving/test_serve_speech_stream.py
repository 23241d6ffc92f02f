"""Speech sent sentence by sentence: a long text's first sentence is heard
while the rest is spoken, in every format OpenAI names, and a client that
hangs up stops the work."""

import base64
import io
import json
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

SENTENCES = ["The old man found a red box.", "A young girl opened the door!", "Was it late?"]
TEXT = "  ".join(SENTENCES)
GAP_SECONDS = 0.2  # the voice task's pause between sentences
RATE = 16000  # the demo VITS


@pytest.fixture(scope="module")
def client(live):
    from openai import OpenAI

    return OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def spy(monkeypatch):
    """The texts the voice task speaks, in order; ``hold`` makes one wait
    for ``release``, ``fail`` makes one fail."""
    from lorakit_voice.task import VoiceCloneTask

    class Spy:
        texts: list = []
        hold = fail = None
        release = threading.Event()

    original = VoiceCloneTask.predict

    def predict(self, base, model, inputs):
        for text in inputs:
            Spy.texts.append(text)
            if text == Spy.hold:
                Spy.release.wait(30)
            if text == Spy.fail:
                raise RuntimeError("the model broke")
        return original(self, base, model, inputs)

    Spy.texts = []
    monkeypatch.setattr(VoiceCloneTask, "predict", predict)
    yield Spy
    Spy.release.set()


def speak(client, **fields):
    fields = {"model": "tts-1", "voice": "kauko", "input": TEXT, "response_format": "wav", **fields}
    return client.audio.speech.create(**fields).read()


def seconds(data):
    """Duration of encoded audio, read by FFmpeg (PyAV)."""
    import av

    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(audio=0))
    return sum(f.samples for f in frames) / frames[0].sample_rate


def sentence_samples(client):
    return [len(sf.read(io.BytesIO(speak(client, input=s)))[0]) for s in SENTENCES]


def test_a_long_text_is_the_sentences_spoken_alone_with_a_pause_between(client, service):
    from lorakit.runs import predict

    whole, rate = sf.read(io.BytesIO(speak(client)), dtype="float32")
    expected = predict("voice-clone", [TEXT], str(service.adapters["kauko"].folder))[0]["audio"]
    assert rate == RATE and whole.shape == expected.shape
    assert np.abs(whole - expected).max() < 2e-4  # 16-bit rounding of the wav
    assert len(whole) == sum(sentence_samples(client)) + 2 * round(GAP_SECONDS * RATE)


def test_the_first_sentence_is_sent_before_the_last_is_spoken(live, client, service, spy):
    """A player starts on the first sentence: its bytes arrive while the
    last sentence is still being spoken (held here until they have)."""
    first = sentence_samples(client)[0]
    spy.hold = SENTENCES[-1]
    wanted = round((first + GAP_SECONDS * RATE) * 24000 / RATE) * 2  # 16-bit pcm at 24 kHz
    body = {"model": "tts-1", "voice": "kauko", "input": TEXT, "response_format": "pcm"}
    received = b""
    with httpx.stream("POST", f"{live.url}/v1/audio/speech", json=body, timeout=20) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        while len(received) < wanted:
            received += next(chunks)  # a read timeout here: nothing came before the last sentence was done
        assert SENTENCES[-1] in spy.texts and not spy.release.is_set()
        spy.release.set()
        received += b"".join(chunks)
    expected = speak(client, response_format="pcm")
    assert abs(len(received) - len(expected)) <= 8  # the same answer, but for resampling at sentence edges
    assert service.capacity.taken == 0


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "pcm"])
def test_every_streamed_format_holds_the_whole_answer(client, response_format):
    """OpenAI's streaming client reads it chunk by chunk; decoded, it lasts as
    long as the wav (mp3 and aac add their encoders' few ms)."""
    length = len(sf.read(io.BytesIO(speak(client)))[0]) / RATE
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="kauko", input=TEXT, response_format=response_format) as response:
        assert response.headers["content-type"].startswith(
            {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "pcm": "audio/pcm"}[response_format])
        data = b"".join(response.iter_bytes())
    heard = len(data) / 2 / 24000 if response_format == "pcm" else seconds(data)
    assert length - 0.01 < heard < length + 0.15, (response_format, heard, length)


def test_server_sent_events_carry_the_audio_then_done(client):
    data = speak(client, response_format="mp3", extra_body={"stream_format": "sse"})
    events = [json.loads(line[len("data: "):]) for line in data.decode().splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1) and len(events) > 2
    assert events[-1]["type"] == "speech.audio.done" and set(events[-1]["usage"]) == {
        "input_tokens", "output_tokens", "total_tokens"}
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert abs(seconds(audio) - len(sf.read(io.BytesIO(speak(client)))[0]) / RATE) < 0.15
    one = speak(client, input=SENTENCES[0], extra_body={"stream_format": "sse"})  # wav: one delta, then done
    assert [json.loads(line[6:])["type"] for line in one.decode().split("\n\n") if line] == [
        "speech.audio.delta", "speech.audio.done"]


def test_a_custom_voice_object_names_the_cloned_voice(client):
    assert speak(client, voice={"id": "kauko"}, input=SENTENCES[0]) == speak(client, input=SENTENCES[0])


def test_a_character_a_later_sentence_cannot_speak_is_a_400_before_any_audio(client, spy):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as caught:
        speak(client, input=f"{TEXT} It cost 5€.", response_format="mp3")
    assert caught.value.body["param"] == "input" and "'€'" in caught.value.body["message"]
    assert spy.texts == []  # refused before a sentence was spoken


def _settled(service, seconds=10.0):
    deadline = time.monotonic() + seconds
    while service.capacity.taken and time.monotonic() < deadline:
        time.sleep(0.05)
    return service.capacity.taken == 0


def test_a_client_that_hangs_up_stops_the_work_and_frees_its_place(live, service, spy):
    many = [f"Sentence number {word} was read." for word in ("one", "two", "three", "four", "five", "six")]
    spy.hold = many[1]
    body = {"model": "tts-1", "voice": "kauko", "input": " ".join(many), "response_format": "pcm"}
    with httpx.stream("POST", f"{live.url}/v1/audio/speech", json=body, timeout=20) as response:
        next(response.iter_bytes())  # the first sentence, then the client goes
    spy.release.set()
    assert _settled(service)
    time.sleep(0.5)  # what would be spoken next has had its time
    assert spy.texts[0] == many[0] and len(spy.texts) <= 3  # the sentence in hand (held), at most one more


def test_a_client_that_hangs_up_on_a_whole_answer_frees_its_place_too(live, service, spy):
    """wav and flac go whole, written once every sentence is spoken: sixteen
    clients that left kept the queue full for 86 s, refusing everyone else."""
    many = [f"Sentence number {word} was read." for word in ("one", "two", "three", "four", "five", "six")]
    spy.hold = many[1]
    body = {"model": "tts-1", "voice": "kauko", "input": " ".join(many), "response_format": "wav"}
    with pytest.raises(httpx.ReadTimeout):  # nothing comes before the whole is spoken: the client gives up
        httpx.post(f"{live.url}/v1/audio/speech", json=body, timeout=1.0)
    spy.release.set()
    assert _settled(service)
    time.sleep(0.5)  # what would be spoken next has had its time
    assert spy.texts[0] == many[0] and len(spy.texts) <= 3  # the sentence in hand (held), at most one more


def test_a_failure_after_the_first_sentence_breaks_the_transfer(live, service, spy):
    """A cut answer must not look whole: the client sees a broken transfer."""
    spy.fail = SENTENCES[-1]
    body = {"model": "tts-1", "voice": "kauko", "input": TEXT, "response_format": "mp3"}
    with pytest.raises(httpx.HTTPError):
        with httpx.stream("POST", f"{live.url}/v1/audio/speech", json=body, timeout=20) as response:
            assert response.status_code == 200
            b"".join(response.iter_bytes())
    assert _settled(service)


@pytest.mark.parametrize("response_format", ["pcm", "wav"])
def test_an_adapter_rewritten_mid_answer_cuts_it_rather_than_change_voice(live, service, served, spy,
                                                                         response_format):
    """The header names the adapter versions of the whole answer: a run
    resumed in place while a long text is spoken must not finish it in the
    new voice. Streamed, the transfer breaks; sent whole, a 503 to retry."""
    import shutil

    from serving_support import rewrite_adapter

    many = [f"Sentence number {word} was read." for word in ("one", "two", "three", "four", "five")]
    body = {"model": "tts-1", "voice": "kauko-v", "input": " ".join(many), "response_format": response_format}
    outcome = {}

    def ask():
        try:
            with httpx.stream("POST", f"{live.url}/v1/audio/speech", json=body, timeout=60) as response:
                outcome["status"] = response.status_code
                outcome["body"] = b"".join(response.iter_bytes())
        except httpx.HTTPError as exc:
            outcome["broken"] = exc

    shutil.copytree(served / "kauko", served / "kauko-v")
    try:
        spy.hold = many[1]
        asking = threading.Thread(target=ask)
        asking.start()
        deadline = time.monotonic() + 30
        while len(spy.texts) < 2 and time.monotonic() < deadline:  # the second sentence: held, old weights
            time.sleep(0.05)
        rewrite_adapter(served / "kauko-v", served / "calm")
        rescanned = threading.Thread(target=service.refresh, kwargs={"force": True})
        rescanned.start()  # queues the new weights behind the sentence in hand
        time.sleep(0.5)
        spy.release.set()
        asking.join(60)
        rescanned.join(60)
        if response_format == "pcm":
            assert outcome.get("status") == 200 and "broken" in outcome, outcome  # began, then cut
        else:
            assert outcome["status"] == 503 and b"rewritten" in outcome["body"], outcome
        assert spy.texts[:3] == many[:3] and len(spy.texts) == 3  # nothing after the first new one
    finally:
        shutil.rmtree(served / "kauko-v")
        service.refresh(force=True)
    assert _settled(service)
