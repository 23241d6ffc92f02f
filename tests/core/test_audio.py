"""Clip preparation on synthetic recordings: tone bursts with pauses."""

import numpy as np
import pytest
import soundfile

from lorakit.data.audio import (AudioSettings, prepare_folder, read_transcripts, rejected_note, split_on_silence,
                                trim_silence)
from lorakit.errors import DataError

RATE = 16000


def speechlike(seconds, rate=RATE, pauses=(), lead=0.5, tail=0.5, amplitude=0.3, seed=0):
    """A tone with silent pauses (at given second offsets, 0.4 s each), padded with silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    body = amplitude * np.sin(2 * np.pi * 220 * t) * (1 + 0.1 * rng.standard_normal(len(t)))
    for start in pauses:
        body[int(start * rate): int((start + 0.4) * rate)] = 0
    silence = lambda s: np.zeros(int(s * rate))  # noqa: E731
    return np.concatenate([silence(lead), body, silence(tail)]).astype(np.float32)


def test_trim_removes_leading_and_trailing_silence():
    audio = speechlike(2.0, lead=1.0, tail=0.7)
    trimmed = trim_silence(audio, RATE, 40)
    assert abs(len(trimmed) / RATE - 2.0) < 0.05


def test_split_cuts_in_pauses_under_the_limit():
    audio = speechlike(20.0, pauses=(6.0, 12.5), lead=0, tail=0)
    pieces = split_on_silence(audio, RATE, AudioSettings(max_seconds=8))
    assert len(pieces) == 3 and all(len(p) / RATE <= 8 for p in pieces)
    assert sum(len(p) for p in pieces) == pytest.approx(len(audio), abs=RATE * 0.02)
    # each cut lands inside a pause: the piece ends quietly
    assert all(np.abs(p[-int(0.1 * RATE):]).max() < 1e-3 for p in pieces[:-1])


def test_split_finds_the_pauses_under_hum_and_hiss():
    """A home recording: mains hum and hiss 30 dB under the voice fill its
    pauses, which a threshold under the loudest frame misses (cutting mid-word
    at the limit); judged against the noise floor, they are pauses."""
    rng = np.random.default_rng(1)
    audio = speechlike(20.0, pauses=(6.0, 13.0), lead=0, tail=0)
    t = np.arange(len(audio)) / RATE
    noise = np.sin(2 * np.pi * 50 * t) + rng.standard_normal(len(audio))
    audio = (audio + noise * 0.3 / np.sqrt(2) / 10 ** (30 / 20) / np.sqrt(np.mean(noise ** 2))).astype(np.float32)
    pieces = split_on_silence(audio, RATE, AudioSettings(max_seconds=8))
    assert [round(len(p) / RATE, 1) for p in pieces] == pytest.approx([6.2, 7.0, 6.8], abs=0.1)


def test_prepare_folder_cleans_resamples_and_reports(tmp_path):
    soundfile.write(tmp_path / "a.wav", np.stack([speechlike(3.0, 44100)] * 2, axis=1), 44100)  # stereo, 44.1 kHz
    soundfile.write(tmp_path / "b.flac", speechlike(2.0, 22050, seed=1) * 0.05, 22050)           # quiet
    soundfile.write(tmp_path / "c.ogg", speechlike(0.4), RATE)                                    # too short
    soundfile.write(tmp_path / "d.wav", np.zeros(RATE, dtype=np.float32), RATE)                  # silent
    (tmp_path / "e.wav").write_bytes(b"RIFF....not audio")                                      # corrupt
    (tmp_path / "notes.doc").write_text("x")
    (tmp_path / "metadata.csv").write_text("a|Hello there.|Hello there.\nb|Second one|\nc|short\nd|silent\ne|bad\nghost|no audio\n")
    prepared = prepare_folder(tmp_path, RATE, AudioSettings(min_seconds=1.0))
    assert [c.source for c in prepared.clips] == ["a.wav", "b.flac"]
    assert all(c.sample_rate == RATE and c.audio.ndim == 1 for c in prepared.clips)
    assert abs(prepared.clips[0].seconds - 3.0) < 0.05 and prepared.clips[0].text == "Hello there."
    assert prepared.clips[1].text == "Second one"
    levels = [20 * np.log10(np.sqrt(np.mean(c.audio ** 2))) for c in prepared.clips]
    assert levels == pytest.approx([-20, -20], abs=0.5)
    reasons = dict(prepared.rejected)
    assert "shorter" in reasons["c.ogg"] and reasons["d.wav"] == "silent"
    assert "not readable" in reasons["e.wav"] and "not an audio file" in reasons["notes.doc"]
    assert "without an audio file" in reasons["ghost"]
    summary = prepared.summary()
    assert summary["clips"] == 2 and summary["durations"] == {"2-5 s": 2} and len(summary["rejected"]) == 5


def test_long_transcribed_clip_is_rejected_untranscribed_is_split(tmp_path):
    soundfile.write(tmp_path / "long.wav", speechlike(20, pauses=(7.0, 14.0)), RATE)
    (tmp_path / "long.txt").write_text("a long sentence")
    with pytest.raises(DataError, match="cannot be split"):
        prepare_folder(tmp_path, RATE, AudioSettings(max_seconds=10))
    (tmp_path / "long.txt").unlink()
    prepared = prepare_folder(tmp_path, RATE, AudioSettings(max_seconds=10), need_text=False)
    assert len(prepared.clips) == 3 and [c.segment for c in prepared.clips] == [0, 1, 2]


def _cut_at(*seconds_and_texts):
    """A cut_long that cuts where it is told: ((start, end, text) in seconds)."""
    calls = []

    def cut(audio, rate, text):
        calls.append((len(audio), rate, text))
        return [(int(a * rate), int(b * rate), words) for a, b, words in seconds_and_texts]

    return cut, calls


def test_long_transcribed_clip_is_cut_by_the_plugins_cutter(tmp_path):
    soundfile.write(tmp_path / "long.wav", speechlike(20, 22050, pauses=(7.0, 14.0), lead=0, tail=0), 22050)
    (tmp_path / "long.txt").write_text("One two. Three four. Five six.")
    soundfile.write(tmp_path / "short.wav", speechlike(2.0), RATE)
    (tmp_path / "short.txt").write_text("Short one.")
    cut, calls = _cut_at((0, 7.2, "One two."), (7.2, 14.2, "Three four."), (14.2, 20, "Five six."))
    prepared = prepare_folder(tmp_path, RATE, AudioSettings(max_seconds=10), cut_long=cut)
    # Called once, for the long recording only, at the model's rate, trimmed, with its whole transcript.
    assert len(calls) == 1 and calls[0][1:] == (RATE, "One two. Three four. Five six.")
    assert abs(calls[0][0] / RATE - 20) < 0.05
    long = [c for c in prepared.clips if c.source == "long.wav"]
    assert [(c.segment, c.text) for c in long] == [(0, "One two."), (1, "Three four."), (2, "Five six.")]
    # Each piece is trimmed of the half pause it keeps at its edges.
    assert [round(c.seconds, 1) for c in long] == [7.0, 6.6, 5.6]
    assert prepared.cut == {"long.wav": 3} and prepared.summary()["cut_at_sentences"] == {"long.wav": 3}
    assert [c.text for c in prepared.clips if c.source == "short.wav"] == ["Short one."]


def test_a_cut_piece_still_too_long_or_short_is_rejected_alone(tmp_path):
    soundfile.write(tmp_path / "long.wav", speechlike(20, pauses=(12.0,), lead=0, tail=0), RATE)
    (tmp_path / "long.txt").write_text("A. B. C.")
    cut, _ = _cut_at((0, 12.2, "A. B."), (12.2, 12.9, "C."), (12.9, 20, "D."))
    prepared = prepare_folder(tmp_path, RATE, AudioSettings(max_seconds=10), cut_long=cut)
    assert [c.text for c in prepared.clips] == ["D."] and prepared.cut == {"long.wav": 1}  # the pieces kept
    reasons = dict(prepared.rejected)
    assert "no pause between them" in reasons["long.wav (piece 1)"] and "'A. B.'" in reasons["long.wav (piece 1)"]
    assert "shorter than" in reasons["long.wav (piece 2)"]


def test_a_recording_the_cutter_refuses_is_rejected_with_its_reason(tmp_path):
    soundfile.write(tmp_path / "long.wav", speechlike(20, pauses=(7.0,)), RATE)
    (tmp_path / "long.txt").write_text("A. B.")
    soundfile.write(tmp_path / "short.wav", speechlike(2.0), RATE)
    (tmp_path / "short.txt").write_text("Short one.")

    def refuse(audio, rate, text):
        raise DataError("its transcript does not follow its audio")

    prepared = prepare_folder(tmp_path, RATE, AudioSettings(max_seconds=10), cut_long=refuse)
    assert [c.source for c in prepared.clips] == ["short.wav"] and not prepared.cut
    reason = dict(prepared.rejected)["long.wav"]
    assert "longer than 10 s and could not be cut at its sentences: its transcript does not follow" in reason


def _transcriber(texts, name="a recognizer"):
    """A transcribe that hears ``texts`` by recording length in whole seconds,
    and refuses a length it does not know; records its calls."""
    calls = []

    def transcribe(audio, rate):
        calls.append((len(audio), rate))
        heard = texts.get(round(len(audio) / rate))
        if heard is None:
            raise DataError("it was unsure")
        return heard

    transcribe.name = name
    return transcribe, calls


def test_a_recording_without_a_transcript_is_transcribed_and_summarised(tmp_path):
    soundfile.write(tmp_path / "said.wav", speechlike(2.0), RATE)
    (tmp_path / "said.txt").write_text("Written by hand.")
    soundfile.write(tmp_path / "heard.wav", speechlike(3.0, 22050, seed=1), 22050)
    soundfile.write(tmp_path / "unsure.wav", speechlike(4.0, seed=2), RATE)
    transcribe, calls = _transcriber({3: "Heard by the recognizer."}, "Whisper test")
    prepared = prepare_folder(tmp_path, RATE, transcribe=transcribe)
    # Only recordings without a transcript are heard, prepared at the model's rate and trimmed.
    assert len(calls) == 2 and {rate for _, rate in calls} == {RATE}
    assert sorted(round(n / RATE) for n, _ in calls) == [3, 4]
    assert {c.source: c.text for c in prepared.clips} == {"said.wav": "Written by hand.",
                                                         "heard.wav": "Heard by the recognizer."}
    reason = dict(prepared.rejected)["unsure.wav"]
    assert "speech recognition gave none it trusts (it was unsure)" in reason and "unsure.txt" in reason
    summary = prepared.summary()
    assert summary["transcribed"] == {"heard.wav": "Heard by the recognizer."}
    assert summary["transcribed_by"] == "Whisper test"


def test_a_long_recording_without_a_transcript_is_split_at_pauses_and_each_part_heard(tmp_path, capsys):
    """Split as a recording is when no text is needed, then each part heard
    alone: a part the recognizer doubts is refused on its own."""
    soundfile.write(tmp_path / "talk.wav", speechlike(20, pauses=(6.0, 13.0), lead=0, tail=0), RATE)
    heard = []

    def transcribe(audio, rate):
        heard.append(len(audio) / rate)
        if len(heard) == 2:
            raise DataError("it was unsure")
        return f"Part {len(heard)}."

    def cut(audio, rate, text):
        raise AssertionError("a part under the limit needs no cutting")

    prepared = prepare_folder(tmp_path, RATE, AudioSettings(max_seconds=8.0), cut_long=cut, transcribe=transcribe)
    assert len(heard) == 3 and all(5.5 < seconds <= 8.0 for seconds in heard)
    assert prepared.transcribed == {"talk.wav (part 1)": "Part 1.", "talk.wav (part 3)": "Part 3."}
    assert "it was unsure" in dict(prepared.rejected)["talk.wav (part 2)"]
    assert [(c.source, c.segment, c.text) for c in prepared.clips] == [("talk.wav", 0, "Part 1."),
                                                                        ("talk.wav", 1, "Part 3.")]
    assert not prepared.cut
    prepared.print_summary()
    assert "1 recording without a transcript, in 2 parts" in capsys.readouterr().err


def test_without_a_transcriber_an_untranscribed_recording_is_rejected_unheard(tmp_path):
    soundfile.write(tmp_path / "a.wav", speechlike(2.0), RATE)
    soundfile.write(tmp_path / "b.wav", speechlike(2.0), RATE)
    (tmp_path / "b.txt").write_text("Has one.")
    prepared = prepare_folder(tmp_path, RATE)
    assert dict(prepared.rejected)["a.wav"] == "no transcript: add a line to metadata.csv or a a.txt"
    assert "transcribed" not in prepared.summary()


def test_sidecar_transcripts_and_missing_ones(tmp_path):
    soundfile.write(tmp_path / "x.wav", speechlike(2), RATE)
    soundfile.write(tmp_path / "y.wav", speechlike(2), RATE)
    (tmp_path / "x.txt").write_text("  the first\nclip ")
    assert read_transcripts(tmp_path) == {"x": "the first clip"}
    prepared = prepare_folder(tmp_path, RATE)
    assert [c.source for c in prepared.clips] == ["x.wav"]
    assert "no transcript" in dict(prepared.rejected)["y.wav"]


def test_a_transcript_id_finds_its_clip_however_its_accents_are_encoded(tmp_path):
    """metadata.csv typed "café" (one composed letter) for the clip macOS named with a combining accent."""
    import unicodedata

    composed, combining = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    soundfile.write(tmp_path / f"{combining}.wav", speechlike(2), RATE)
    soundfile.write(tmp_path / "tea.wav", speechlike(2, seed=1), RATE)
    (tmp_path / "metadata.csv").write_text(f"{composed}|A cup of coffee.\ntea|A cup of tea.\n")
    prepared = prepare_folder(tmp_path, RATE)
    assert sorted((c.source, c.text) for c in prepared.clips) == [
        (f"{combining}.wav", "A cup of coffee."), ("tea.wav", "A cup of tea.")]
    assert not prepared.rejected


def test_empty_or_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prepare_folder(tmp_path / "nope", RATE)
    with pytest.raises(DataError, match="no usable clips"):
        prepare_folder(tmp_path, RATE)


def test_a_folder_of_other_files_is_said_by_reason_not_a_line_a_file(tmp_path, capsys):
    """A folder of photos named every file with the list of formats again."""
    for i in range(30):
        (tmp_path / f"photo_{i:02d}.png").write_bytes(b"x")
    with pytest.raises(DataError) as error:
        prepare_folder(tmp_path, RATE)
    said = str(error.value)
    assert "photo_00.png, photo_01.png, photo_02.png and 27 more: not an audio file (wav, flac" in said, said
    assert said.count("photo_") == 3
    soundfile.write(tmp_path / "a.wav", speechlike(2), RATE)
    (tmp_path / "a.txt").write_text("the one clip")
    prepared = prepare_folder(tmp_path, RATE)
    prepared.print_summary()
    printed = " ".join(capsys.readouterr().err.split())
    assert "rejected 30: not an audio file" in printed and printed.count("photo_") == 3, printed
    assert f"{tmp_path / 'photo_00.png'}, " in rejected_note(prepared.rejected, tmp_path)
    for i in range(30):
        (tmp_path / f"photo_{i:02d}.png").unlink()
    (tmp_path / "b.png").write_bytes(b"x")
    prepare_folder(tmp_path, RATE).print_summary()  # a few are still each a line
    assert "rejected b.png: not an audio file" in " ".join(capsys.readouterr().err.split())


def test_many_files_each_with_its_own_reason_are_not_a_line_each(capsys):
    from lorakit.data.audio import REJECTED_LINES, print_rejected

    # Whisper unsure of 37 recordings says each one's words: 37 reasons of one file each.
    unsure = [(f"{i:04d}.wav", f'Whisper was unsure of "sentence {i}"') for i in range(37)]
    print_rejected([*unsure, *[(f"p{i}.png", "not an audio file") for i in range(3)]])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == REJECTED_LINES + 1, lines
    assert "rejected 3: not an audio file (p0.png, p1.png, p2.png)" in lines[0]  # the biggest group first
    assert " ".join(lines[-1].split()) == ("rejected 18 more, for 18 other reasons (every file with its reason: "
                                           "data.rejected in the run's adapter/lorakit.json)")


def test_malformed_metadata_line_is_named(tmp_path):
    (tmp_path / "metadata.csv").write_text("a|fine\njust text without bars\n")
    with pytest.raises(DataError, match=r"metadata.csv:2"):
        read_transcripts(tmp_path)


def test_implausible_sample_rate_is_rejected(tmp_path):
    soundfile.write(tmp_path / "odd.wav", speechlike(2, 1000), 1000)
    soundfile.write(tmp_path / "ok.wav", speechlike(2), RATE)
    prepared = prepare_folder(tmp_path, RATE, need_text=False)
    assert "implausible" in dict(prepared.rejected)["odd.wav"]


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "FLOAT", "DOUBLE"])
def test_any_sample_format_reads_to_the_same_float_audio(tmp_path, subtype):
    audio = speechlike(2.0)
    soundfile.write(tmp_path / "clip.wav", audio, RATE, subtype=subtype)
    prepared = prepare_folder(tmp_path, RATE, need_text=False)
    reference = prepare_folder(_write_reference(tmp_path / "ref", audio), RATE, need_text=False)
    assert prepared.clips[0].audio.dtype == np.float32
    tolerance = 0.05 if subtype == "PCM_U8" else 1e-3
    assert np.abs(prepared.clips[0].audio - reference.clips[0].audio).max() < tolerance


def _write_reference(folder, audio):
    folder.mkdir()
    soundfile.write(folder / "clip.wav", audio, RATE, subtype="FLOAT")
    return folder


def test_zero_length_clip_is_rejected(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), RATE)
    (tmp_path / "zero.wav").write_bytes(b"")
    soundfile.write(tmp_path / "ok.wav", speechlike(2), RATE)
    prepared = prepare_folder(tmp_path, RATE, need_text=False)
    reasons = dict(prepared.rejected)
    assert [c.source for c in prepared.clips] == ["ok.wav"]
    assert reasons["empty.wav"] == "silent" and "not readable" in reasons["zero.wav"]


def _encode(path, codec, audio, rate=48000):
    """``audio`` (channels x samples) written with PyAV's encoder ``codec``."""
    import av

    layout = "mono" if len(audio) == 1 else "stereo"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(audio.astype(np.float32), format="fltp", layout=layout)
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def test_phone_and_browser_recordings_are_read(tmp_path):
    """m4a and aac (phones' voice memos), webm (a browser's recorder) and opus
    (voice messages): decoded, made mono, at their own rate."""
    from lorakit.data.audio import load_audio

    pytest.importorskip("av")
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)
    _encode(tmp_path / "memo.m4a", "aac", np.stack([tone, tone]))  # stereo
    _encode(tmp_path / "raw.aac", "aac", tone[None])
    _encode(tmp_path / "browser.webm", "libopus", tone[None])
    soundfile.write(tmp_path / "message.opus", tone, 48000, format="OGG", subtype="OPUS")
    for name in ("memo.m4a", "raw.aac", "browser.webm", "message.opus"):
        audio, rate = load_audio(tmp_path / name)
        assert audio.ndim == 1 and audio.dtype == np.float32 and rate == 48000, name
        assert 1.0 <= len(audio) / rate < 1.05, name  # the codec's priming samples at most
        peak = np.argmax(np.abs(np.fft.rfft(audio))) * rate / len(audio)
        assert abs(peak - 440) < 2, name
    (tmp_path / "broken.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A not really")
    prepared = prepare_folder(tmp_path, RATE, need_text=False)
    assert sorted(c.source for c in prepared.clips) == ["browser.webm", "memo.m4a", "message.opus", "raw.aac"]
    reason = dict(prepared.rejected)["broken.m4a"]
    assert reason.startswith("not readable audio (") and "convert it to wav or flac" in reason


def test_the_sound_of_a_video_is_read_and_a_silent_video_refused(tmp_path):
    """A phone video of someone speaking (mp4, mov): its first sound track."""
    av = pytest.importorskip("av")
    from lorakit.data.audio import load_audio

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(960 * 50) / 48000)).astype(np.float32)
    for name, with_sound in (("talk.mp4", True), ("talk.mov", True), ("silent.mp4", False)):
        with av.open(str(tmp_path / name), "w") as out:
            video = out.add_stream("mpeg4", rate=25)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
            sound = out.add_stream("aac", rate=48000, layout="mono") if with_sound else None
            for index in range(25):
                picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index * 9, np.uint8), format="rgb24")
                out.mux(video.encode(picture))
            out.mux(video.encode(None))
            if sound:
                frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
                frame.rate = 48000
                out.mux([*sound.encode(frame), *sound.encode(None)])
    for name in ("talk.mp4", "talk.mov"):
        audio, rate = load_audio(tmp_path / name)
        assert rate == 48000 and 1.0 <= len(audio) / rate < 1.05, name
    with pytest.raises(DataError, match="silent.mp4: not readable audio \\(it holds no audio stream\\)"):
        load_audio(tmp_path / "silent.mp4")
