"""Long recordings cut at their sentence ends, each piece with its own text.

People record themselves reading a page, not one sentence per file, and a
TTS model learns from clips of a few seconds, each with its words. With no
speech recognizer to say where each word was spoken, the transcript is
aligned to the recording the way subtitle aligners do it: espeak-ng speaks
the transcript sentence by sentence (so every sentence's start and end in
that speech is known exactly), and dynamic time warping over MFCCs (means and
scales removed, so two voices compare) maps that speech onto the recording.
Each sentence end is then cut in the recording's pause nearest to where the
alignment puts it (pauses judged against the recording's noise floor, so
hum and hiss do not hide them); a sentence end with no pause near it
(sentences read without a break) is not cut, and its sentences stay in one piece.

An alignment exists for any text, so it is checked before it is used. The
recording is refused, with the reason, when its transcript does not follow it:

- the transcript in reverse sentence order aligns nearly as well (the text is
  another recording's);
- the alignment holds one side still while the other speaks on for longer
  than ``MAX_STALL_SECONDS`` (speech with no text, or text with no speech);
- a sentence takes far longer or shorter than the recording's pace says it
  should (``PACE_RANGE``: a sentence missing from the text, or one too many).

Measured by ``bench/long_clips.py`` on 25 recordings (the sample speaker's
clips joined six at a time; passages read by three espeak-ng voices the demo
never heard and by Piper's joe at up to 1.43 times its pace; one take of
3.1 minutes, halved before it was cut): every cut lies within 0.12 s of the
true sentence end, every one-sentence piece within 0.1 s of the sentence's
length spoken alone; 16 of 177 sentence ends stayed inside a piece (no
pause, or a piece under MIN_PIECE_SECONDS such as "Wait again!" joined to its
neighbour); no recording was refused (of 225 more of joe's, one was: a
stall just over MAX_STALL_SECONDS). Of 27 wrong transcripts for joe's
recordings, another passage's and one with a sentence too many were refused
every time, one with a sentence left out for all but the shortest ("Wait
again!", "It was short.").
"""

from __future__ import annotations

import io
import shutil
import subprocess
from typing import Any, NamedTuple, Sequence

from lorakit.api import DataError, pauses

#: The longest stretch aligned at once: the alignment's memory grows with the
#: square of the length (3 minutes: two 4,500 x 4,500 matrices, 320 MB)...
MAX_ALIGNED_SECONDS = 180.0
#: ...so a longer recording is first halved at the sentence end with a pause
#: nearest its middle, found by an alignment in coarse steps (10 minutes: two
#: 3,750 x 3,750 matrices), and each half is cut on its own. Longer ones are refused.
MAX_RECORDING_SECONDS = 600.0
COARSE_HOP_SECONDS = 0.16
#: Alignment works at 16 kHz in 40 ms steps; cuts are then placed in 20 ms frames.
ALIGN_RATE = 16000
HOP_SECONDS = 0.04
#: Silence put between espeak-ng's sentences, where their ends are cut.
GAP_SECONDS = 0.3
#: A sentence end is cut in a pause at least this long...
MIN_PAUSE_SECONDS = 0.1
#: ...that lies at most this far from where the alignment puts the end.
SNAP_SECONDS = 0.3
#: A piece shorter than this (a one-word sentence, pause included) joins its
#: neighbour: clips under a second are dropped from training.
MIN_PIECE_SECONDS = 1.2
#: Longest run of speech on one side matched to a standstill on the other
#: (0.16 s at most on matching transcripts; 0.5-1 s where a sentence is missing).
MAX_STALL_SECONDS = 0.4
#: A sentence's length over its espeak-ng length, relative to the whole
#: recording's: 0.87-1.11 on matching transcripts. Outside it, and over
#: MAX_STALL_SECONDS off, the sentence has speech or text too many.
PACE_RANGE = (0.75, 1.33)
#: How much closer the transcript must align than the same sentences in
#: reverse order: at least 0.16 on 33 matching transcripts (sample speaker,
#: espeak-ng voices, joe), at most 0.04 for 36 transcripts of another passage.
MIN_ORDER_GAIN = 0.08


class Piece(NamedTuple):
    """Samples ``start``..``end`` of the recording and the sentences spoken there."""

    start: int
    end: int
    text: str


def recording_cutter(vits: Any) -> Any:
    """``prepare_folder``'s ``cut_long`` for a speaker read by ``vits``: espeak-ng
    speaks in the model's phonemizer language (a Piper voice's own espeak-ng
    voice), English for a grapheme model."""
    from lorakit_voice.data import base_language
    from lorakit_voice.sentences import split_sentences

    voice = base_language(vits)

    def cut(audio: Any, sample_rate: int, text: str) -> list[Piece]:
        return cut_recording(audio, sample_rate, split_sentences(text, language=voice), voice)

    return cut


def cut_recording(audio: Any, sample_rate: int, sentences: Sequence[str], espeak_voice: str,
                  top_db: float = 40.0) -> list[Piece]:
    """Pieces of ``audio`` (one trimmed recording of a transcript, split into
    ``sentences``) cut at the sentence ends that have a pause; ``DataError``
    with the reason when the transcript does not follow the recording."""
    if len(sentences) < 2:
        raise DataError("its transcript is one sentence, which cannot be cut; cut the clip and its text")
    if len(audio) / sample_rate > MAX_RECORDING_SECONDS:
        raise DataError(f"lorakit cuts recordings of up to {MAX_RECORDING_SECONDS / 60:g} minutes at their "
                        "sentences; cut it into shorter parts (at a pause between sentences), each with its text")
    speeches = _espeak_sentences(sentences, espeak_voice, top_db)
    pieces = _cut(audio, sample_rate, list(sentences), speeches, top_db, offset=0, first=1)
    return _short_ones_joined(pieces, int(MIN_PIECE_SECONDS * sample_rate))


def _cut(audio: Any, sample_rate: int, sentences: list[str], speeches: list[Any], top_db: float, offset: int,
         first: int) -> list[Piece]:
    """The pieces of ``audio``, which starts at sample ``offset`` of the
    recording and holds sentences ``first``.. (for messages): aligned whole
    when it is short enough, else halved at a sentence end first."""
    if len(sentences) == 1:
        return [Piece(offset, offset + len(audio), sentences[0])]
    if len(audio) / sample_rate <= MAX_ALIGNED_SECONDS:
        return _aligned_pieces(audio, sample_rate, sentences, speeches, top_db, offset, first)
    cut, count = _halved(audio, sample_rate, speeches, top_db, offset)
    return (_cut(audio[:cut], sample_rate, sentences[:count], speeches[:count], top_db, offset, first)
            + _cut(audio[cut:], sample_rate, sentences[count:], speeches[count:], top_db, offset + cut, first + count))


def _halved(audio: Any, sample_rate: int, speeches: list[Any], top_db: float, offset: int) -> tuple[int, int]:
    """(sample, sentences before it) of the sentence end with a pause nearest
    the middle of ``audio``, found by an alignment in COARSE_HOP_SECONDS steps."""
    real = _at_align_rate(audio, sample_rate)
    spoken, spans = _joined(speeches)
    path, _ = _align(_features(real, COARSE_HOP_SECONDS), _features(spoken, COARSE_HOP_SECONDS))
    real_at = _real_frame_at(path, len(spoken) // int(ALIGN_RATE * COARSE_HOP_SECONDS) + 1)
    middle, best = len(audio) / sample_rate / 2, None
    for count, pause in enumerate(_end_pauses(audio, sample_rate, real_at, spans, COARSE_HOP_SECONDS), start=1):
        if pause is not None and (best is None or abs(pause - middle) < abs(best[0] - middle)):
            best = (pause, count)
    if best is None:
        raise DataError(f"no sentence end between {offset / sample_rate:.0f} s and "
                        f"{(offset + len(audio)) / sample_rate:.0f} s has a pause to cut it at; cut the clip and its text")
    return int(best[0] * sample_rate), best[1]


def _aligned_pieces(audio: Any, sample_rate: int, sentences: list[str], speeches: list[Any], top_db: float,
                    offset: int, first: int) -> list[Piece]:
    """Pieces of ``audio`` (at most MAX_ALIGNED_SECONDS), after the checks of the module docstring."""
    real = _at_align_rate(audio, sample_rate)
    spoken, spans = _joined(speeches)
    real_features = _features(real)
    path, cost = _align(real_features, _features(spoken))
    hop = int(ALIGN_RATE * HOP_SECONDS)
    real_frames, spoken_frames = len(real) // hop + 1, len(spoken) // hop + 1
    real_at = _real_frame_at(path, spoken_frames)

    _check_order(real_features, cost, speeches)
    _check_stalls(path, _voiced(real, real_frames), _voiced(spoken, spoken_frames),
                  offset / sample_rate)
    pace = real_frames / spoken_frames
    for number, (start, end) in enumerate(spans):
        head, tail = start // hop, min(end // hop, spoken_frames - 1)
        length, expected = real_at[tail] - real_at[head], max(1, tail - head) * pace
        ratio, off_seconds = length / expected, abs(length - expected) * HOP_SECONDS
        # A short sentence's ratio is noisy (a 0.6 s sentence 0.1 s off is 15 % off): both must be off.
        if not PACE_RANGE[0] <= ratio <= PACE_RANGE[1] and off_seconds > MAX_STALL_SECONDS:
            raise DataError(
                f"its transcript does not follow its audio: sentence {first + number} ({_quote(sentences[number])}) "
                f"takes {ratio:.1f}x as long as the recording's pace allows; check for a sentence missing from the "
                "transcript or not spoken, or cut the clip and its text")

    cuts = [None if pause is None else int(pause * sample_rate)
            for pause in _end_pauses(audio, sample_rate, real_at, spans, HOP_SECONDS)]
    for index in range(len(cuts) - 1):
        if cuts[index] is not None and cuts[index] == cuts[index + 1]:
            cuts[index] = None  # two sentence ends in one pause: the sentences between stay together
    pieces, first_sentence, start = [], 0, 0
    for number, cut in enumerate(cuts + [len(audio)], start=1):
        if cut is None:
            continue
        pieces.append(Piece(offset + start, offset + cut, " ".join(sentences[first_sentence:number])))
        first_sentence, start = number, cut
    return pieces


def _end_pauses(audio: Any, sample_rate: int, real_at: Any, spans: list[tuple[int, int]],
                hop_seconds: float) -> list[float | None]:
    """For each sentence end but the last: the middle (s) of the recording's
    pause nearest to where the alignment puts it, or None without one."""
    hop = int(ALIGN_RATE * hop_seconds)
    silences = pauses(audio, sample_rate, MIN_PAUSE_SECONDS)
    return [_nearest_pause(silences, real_at[min((end + start) // 2 // hop, len(real_at) - 1)] * hop_seconds)
            for (_, end), (start, _) in zip(spans, spans[1:])]


def _at_align_rate(audio: Any, sample_rate: int) -> Any:
    import numpy as np
    import soxr

    return audio if sample_rate == ALIGN_RATE else soxr.resample(audio, sample_rate, ALIGN_RATE).astype(np.float32)


def _real_frame_at(path: Any, spoken_frames: int) -> Any:
    """The recording's frame (mean over the path) for each frame of espeak-ng's speech."""
    import numpy as np

    counts = np.bincount(path[:, 1], minlength=spoken_frames)
    return np.bincount(path[:, 1], weights=path[:, 0], minlength=spoken_frames) / np.maximum(counts, 1)


def _short_ones_joined(pieces: list[Piece], shortest: int) -> list[Piece]:
    """Each piece shorter than ``shortest`` samples ("Milk?") joined to the
    next one (the last to the one before), rather than dropped as too short."""
    joined: list[Piece] = []
    for piece in pieces:
        if joined and joined[-1].end - joined[-1].start < shortest:
            last = joined.pop()
            piece = Piece(last.start, piece.end, f"{last.text} {piece.text}")
        joined.append(piece)
    if len(joined) > 1 and joined[-1].end - joined[-1].start < shortest:
        last, before = joined.pop(), joined.pop()
        joined.append(Piece(before.start, last.end, f"{before.text} {last.text}"))
    return joined


def _espeak_sentences(sentences: Sequence[str], voice: str, top_db: float) -> list[Any]:
    """espeak-ng's speech of each sentence at ALIGN_RATE, trimmed."""
    if shutil.which("espeak-ng") is None:
        raise DataError("cutting a long recording at its sentences needs espeak-ng (apt-get install espeak-ng); "
                        "install it, or cut the clip and its text")
    return [_espeak(sentence, voice, top_db) for sentence in sentences]


def _joined(speeches: Sequence[Any]) -> tuple[Any, list[tuple[int, int]]]:
    """The speeches one after another with GAP_SECONDS between them, and the
    (start, end) sample of each in the whole."""
    import numpy as np

    gap = np.zeros(int(GAP_SECONDS * ALIGN_RATE), dtype=np.float32)
    parts, spans, position = [], [], 0
    for speech in speeches:
        if parts:
            parts.append(gap)
            position += len(gap)
        spans.append((position, position + len(speech)))
        parts.append(speech)
        position += len(speech)
    return np.concatenate(parts), spans


def _espeak(sentence: str, voice: str, top_db: float) -> Any:
    import numpy as np
    import soundfile
    import soxr

    from lorakit.api import trim_silence

    # The text goes in on stdin: as an argument, a sentence starting with "-" would be read as an option.
    done = subprocess.run(["espeak-ng", "-v", voice, "--stdin", "--stdout"], input=sentence.encode(),
                          capture_output=True)
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise DataError(f"espeak-ng could not speak its transcript with voice {voice!r} ({message}), which cutting "
                        "it at its sentences needs; cut the clip and its text")
    speech, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32")
    speech = soxr.resample(speech, rate, ALIGN_RATE).astype(np.float32)
    trimmed = trim_silence(speech, ALIGN_RATE, top_db)
    return trimmed if len(trimmed) else speech


def _features(audio: Any, hop_seconds: float = HOP_SECONDS) -> Any:
    """MFCCs 0-4 and their deltas per HOP_SECONDS frame, each with its mean and
    scale removed. Loudness, the spectrum's broad shape and how both move are
    what two voices saying the same words share; the finer coefficients are
    the voice itself (with 1-13, one sentence of the sample speaker was told
    from other sentences 8 % of the time, with 0-4 and deltas every time)."""
    import librosa
    import numpy as np

    hop = int(ALIGN_RATE * hop_seconds)
    # A noise floor (-80 dBFS, fixed seed) so that digital silence does not
    # dominate the coefficients' scales: recordings have one, espeak-ng has none.
    audio = audio + np.random.default_rng(0).normal(0.0, 1e-4, len(audio)).astype(np.float32)
    mfcc = librosa.feature.mfcc(y=audio, sr=ALIGN_RATE, n_mfcc=5, n_fft=1024, hop_length=hop)
    features = np.vstack([mfcc, librosa.feature.delta(mfcc)])
    return (features - features.mean(axis=1, keepdims=True)) / (features.std(axis=1, keepdims=True) + 1e-6)


def _align(real: Any, spoken: Any) -> tuple[Any, float]:
    """(recording frame, espeak frame) pairs of the cheapest monotonic path,
    in order, and the mean frame distance along it."""
    import librosa

    cost, path = librosa.sequence.dtw(X=real, Y=spoken, metric="euclidean")
    return path[::-1], float(cost[-1, -1]) / len(path)


def _check_order(real_features: Any, cost: float, speeches: Sequence[Any]) -> None:
    """Refuse a transcript that aligns hardly better than its sentences
    reversed (``cost`` is the transcript's): it is not this recording's."""
    reversed_speech, _ = _joined(list(reversed(speeches)))
    _, backward = _align(real_features, _features(reversed_speech))
    gain = (backward - cost) / backward
    if gain < MIN_ORDER_GAIN:
        raise DataError("its transcript does not follow its audio (its sentences in reverse order match the "
                        f"recording about as well: {gain:.3f}); check that the transcript is this recording's")


def _check_stalls(path: Any, real_voiced: Any, spoken_voiced: Any, offset_seconds: float) -> None:
    """Refuse an alignment that holds one side still while the other speaks on."""
    import numpy as np

    steps = np.diff(path, axis=0)
    for moving, still, voiced, what in ((0, 1, real_voiced, "speech with no text in its transcript"),
                                        (1, 0, spoken_voiced, "text with no speech")):
        stalled = (steps[:, still] == 0) & voiced[path[1:, moving]]
        longest, run, where = 0, 0, 0
        for index, flag in enumerate(stalled):
            run = run + 1 if flag else 0
            if run > longest:
                longest, where = run, index
        if longest * HOP_SECONDS > MAX_STALL_SECONDS:
            at = offset_seconds + path[where + 1, 0] * HOP_SECONDS
            raise DataError(f"its transcript does not follow its audio: {longest * HOP_SECONDS:.1f} s of {what} "
                            f"near {at:.1f} s; check for a sentence missing from the transcript or not spoken, or "
                            "cut the clip and its text")


def _voiced(audio: Any, frames: int) -> Any:
    """Whether each HOP_SECONDS frame (two of the core's 20 ms frames) holds
    speech, judged against the recording's noise floor."""
    import numpy as np

    from lorakit.api import speech_frames

    fine = speech_frames(audio, ALIGN_RATE)
    fine = np.pad(fine, (0, len(fine) % 2))
    voiced = fine[0::2] | fine[1::2]
    return np.pad(voiced, (0, max(0, frames - len(voiced))))[:frames]


def _nearest_pause(silences: list[tuple[float, float]], at: float) -> float | None:
    """The middle of the pause holding ``at``, or of the nearest one within SNAP_SECONDS."""
    best, distance = None, SNAP_SECONDS
    for start, end in silences:
        away = 0.0 if start <= at <= end else min(abs(at - start), abs(at - end))
        if away <= distance:
            best, distance = (start + end) / 2, away
    return best


def _quote(sentence: str) -> str:
    return repr(sentence if len(sentence) <= 40 else sentence[:37] + "...")
