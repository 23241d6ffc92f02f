"""Preparing a folder of recordings for training: any plugin that learns from audio.

Every clip (wav, flac, ogg, opus and mp3 read by soundfile; m4a, aac, webm,
mp4 and mov, what phones and browsers record, decoded by PyAV: a video's first
sound track) is made mono, resampled to
the model's rate with soxr, trimmed of leading and trailing silence, and
loudness-normalised; clips longer than a limit are split at their pauses when
they have no transcript, and cut at their sentences by the plugin's
``cut_long`` (a TTS plugin aligns the transcript to the recording) when they
have one; pieces shorter than a limit are dropped. A clip (or piece) without a
transcript is given one by the plugin's ``transcribe`` (speech recognition)
when it has one. A file that cannot be used is *rejected with its reason*
rather than stopping the run, and the summary says which and why;
only a folder with nothing usable is an error. Two exceptions: a file holding
NaN or infinite samples is an error naming it (a broken export, not a quiet
recording), and a symlink out of the folder is refused (``list_files``). A
hard-clipped file is used, with a warning naming it; so are recordings that
share one transcript (``a.wav`` and ``a.flac``).

Transcripts come from an LJSpeech ``metadata.csv`` (``id|text|normalized``,
the normalized text preferred) or from a sidecar ``.txt`` per clip.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from lorakit.data.files import inside, list_files, read_text, require_folder, warn
from lorakit.errors import DataError

#: Containers libsndfile cannot open, decoded with PyAV (FFmpeg's libraries):
#: phones' voice memos, browsers' recordings, and the sound of videos.
DECODED_BY_AV = (".m4a", ".aac", ".webm", ".mp4", ".mov")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3") + DECODED_BY_AV
#: The formats, for messages: "wav, flac, ogg, ...".
AUDIO_FORMATS = ", ".join(suffix[1:] for suffix in AUDIO_SUFFIXES)
TRANSCRIPTS_FILE = "metadata.csv"
FRAME_SECONDS = 0.02
HISTOGRAM_EDGES = (0, 2, 5, 10, 15, 30)
#: Files not used, listed one a line up to this many; more are counted by reason.
REJECTED_LINES = 20
#: ``take.wav (part 2)``: a part of a recording without a transcript, heard alone.
PART_LABEL = " (part "
#: A sample this close to full scale is at the ceiling (16-bit full scale reads 0.99997)...
CLIP_LEVEL = 0.999
#: ...and a file with more than this share of its samples in runs of three or
#: more at the ceiling was hard-clipped: a clean peak touches it for a sample or two.
CLIPPED_SHARE = 0.001


@dataclass(frozen=True)
class AudioSettings:
    """How clips are cleaned and cut."""

    min_seconds: float = 1.0
    max_seconds: float = 15.0
    #: Frames quieter than the loudest frame by this many dB count as silence.
    top_db: float = 40.0
    #: RMS level every clip is normalised to.
    target_dbfs: float = -20.0
    #: A pause at least this long may be a split point of a long clip.
    min_pause_seconds: float = 0.15


@dataclass
class AudioClip:
    """One prepared clip: mono float32 at ``sample_rate``; ``segment`` counts
    the pieces of a source file that was split."""

    source: str
    audio: Any
    sample_rate: int
    text: str | None = None
    segment: int = 0

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass
class PreparedAudio:
    """The usable clips of a folder, and the files that were not used, with why."""

    clips: list[AudioClip] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: Long transcribed recordings cut at their sentences: file -> pieces kept.
    cut: dict[str, int] = field(default_factory=dict)
    #: Recordings that had no transcript, with the text speech recognition gave them.
    transcribed: dict[str, str] = field(default_factory=dict)
    #: What gave them (the recognizer's ``name``), for the summary.
    transcribed_by: str = ""

    @property
    def seconds(self) -> float:
        return sum(clip.seconds for clip in self.clips)

    def histogram(self) -> dict[str, int]:
        """Clip counts per duration bin, e.g. ``{"2-5 s": 10}``."""
        bins = {}
        edges = list(HISTOGRAM_EDGES) + [float("inf")]
        for low, high in zip(edges, edges[1:]):
            label = f"{low}-{high} s" if high != float("inf") else f">{low} s"
            bins[label] = sum(low <= clip.seconds < high for clip in self.clips)
        return {k: v for k, v in bins.items() if v}

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary for the adapter manifest."""
        return {
            "clips": len(self.clips),
            "minutes": round(self.seconds / 60, 2),
            "durations": self.histogram(),
            "rejected": [{"file": f, "reason": r} for f, r in self.rejected],
            **({"cut_at_sentences": dict(self.cut)} if self.cut else {}),
            **({"transcribed": dict(self.transcribed), "transcribed_by": self.transcribed_by}
               if self.transcribed else {}),
        }

    def print_summary(self, title: str = "prepared audio") -> None:
        from rich.table import Table

        from lorakit.progress import console

        table = Table(title=f"{title}: {len(self.clips)} clips, {self.seconds / 60:.2f} min")
        table.add_column("duration")
        table.add_column("clips", justify="right")
        for label, count in self.histogram().items():
            table.add_row(label, str(count))
        console.print(table)
        if self.cut:
            console.print(f"  cut at their sentences: {len(self.cut)} long recording{'s' if len(self.cut) > 1 else ''} "
                          f"into {sum(self.cut.values())} pieces")
        if self.transcribed:
            files = len({label.split(PART_LABEL)[0] for label in self.transcribed})
            parts = f", in {len(self.transcribed)} parts" if len(self.transcribed) > files else ""
            console.print(f"  transcribed by {self.transcribed_by}: {files} recording{'s' if files > 1 else ''} "
                          f"without a transcript{parts} (the texts: data.transcribed in the run's "
                          "adapter/lorakit.json; a .txt beside a recording replaces its text)")
        print_rejected(self.rejected)


def print_rejected(rejected: list[tuple[str, str]]) -> None:
    """The files not used, one a line with its reason; counted by reason
    when there are many (a folder of photos, a whole home folder)."""
    from lorakit.progress import console

    if len(rejected) <= REJECTED_LINES:
        for source, reason in rejected:
            console.print(f"  [yellow]rejected[/yellow] {source}: {reason}")
        return
    groups = sorted(_by_reason(rejected).items(), key=lambda group: -len(group[1]))  # the biggest first
    for reason, sources in groups[:REJECTED_LINES]:
        console.print(f"  [yellow]rejected[/yellow] {len(sources)}: {reason} ({_some(sources, 3)})")
    rest = groups[REJECTED_LINES:]
    if rest:  # each its own reason (Whisper unsure of each recording's own words): not a line each
        console.print(f"  [yellow]rejected[/yellow] {sum(len(sources) for _, sources in rest)} more, for "
                      f"{len(rest)} other reasons (every file with its reason: data.rejected in the run's "
                      "adapter/lorakit.json)")


def rejected_note(rejected: list[tuple[str, str]], folder: Path | None = None) -> str:
    """The files not used, a few named for each reason, for a one-line error."""
    groups = list(_by_reason(rejected).items())
    named = [f"{_some([str(folder / s) if folder else s for s in sources], 3)}: {reason}"
             for reason, sources in groups[:5]]
    rest = sum(len(sources) for _, sources in groups[5:])
    return "; ".join(named) + (f"; and {rest} more" if rest else "")


def _by_reason(rejected: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for source, reason in rejected:
        grouped.setdefault(reason, []).append(source)
    return grouped


def _some(names: list[str], shown: int) -> str:
    """``a, b, c and 12 more``."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


# -- reading -----------------------------------------------------------------------


class BrokenSamples(DataError):
    """An audio file holds NaN or infinite samples: an error, never a rejected clip."""

    fatal = True


def load_audio(path: Path) -> tuple[Any, int]:
    """Mono float32 samples and the sample rate of an audio file.

    ``DataError`` when the file cannot be read (a reader may skip it), and
    ``BrokenSamples`` (a ``DataError`` whose ``fatal`` is True) when it holds
    NaN or infinite samples, which must stop the run: such a file is not
    silent, it is broken. A hard-clipped file is returned with a warning."""
    import numpy as np
    import soundfile

    try:
        if Path(path).suffix.lower() in DECODED_BY_AV:
            data, rate, subtype = _decode_with_av(Path(path))
        else:
            with soundfile.SoundFile(str(path)) as file:
                rate, subtype = file.samplerate, file.subtype
                data = file.read(dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable audio ({exc}); convert it to wav or flac, or remove it") from None
    if rate < 4000 or rate > 384000:
        raise DataError(f"{path}: sample rate {rate} Hz is implausible; re-export it at e.g. 22050 or 44100 Hz")
    broken = data.size - int(np.isfinite(data).sum())
    if broken:
        raise BrokenSamples(f"{path}: contains NaN/inf samples ({broken:,} of {data.size:,}), not silent: the file is "
                            "broken (a failed export or conversion); re-export it, or remove it from the folder")
    clipped = clipped_share(data, 127 / 128 if subtype in ("PCM_U8", "PCM_S8") else CLIP_LEVEL)
    if clipped > CLIPPED_SHARE:
        warn(f"{path}: hard-clipped ({clipped:.1%} of its samples sit at full scale); the model learns the distortion "
             "too. Use an unclipped recording if you have one")
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate)


def _decode_with_av(path: Path) -> tuple[Any, int, str]:
    """(samples x channels float32, rate, "AV") of a file's first audio stream,
    decoded by PyAV; its errors are OSErrors or ValueErrors."""
    import numpy as np

    try:
        import av
    except ImportError:
        raise OSError(f"{path.suffix} files are decoded by PyAV, which is not installed: pip install av") from None
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("it holds no audio stream")
        stream = container.streams.audio[0]
        to_float = av.AudioResampler(format="fltp")  # planar float32, channels and rate kept
        frames = [out.to_ndarray() for frame in container.decode(stream) for out in to_float.resample(frame)]
        frames += [out.to_ndarray() for out in to_float.resample(None)]
    if not frames:
        raise ValueError("its audio stream holds no samples")
    return np.ascontiguousarray(np.concatenate(frames, axis=1).T), int(stream.rate), "AV"


def clipped_share(data: Any, level: float = CLIP_LEVEL) -> float:
    """The share of frames of ``data`` (samples x channels) in runs of three or
    more at ``level`` or above in any channel: flat tops, the mark of hard clipping."""
    import numpy as np

    ceiling = (np.abs(data) >= level).any(axis=1)
    if len(ceiling) < 3:
        return 0.0
    middle = ceiling[:-2] & ceiling[1:-1] & ceiling[2:]
    return float(middle.sum()) / len(ceiling)


def read_transcripts(folder: Path) -> dict[str, str]:
    """Transcripts by clip stem: LJSpeech ``metadata.csv`` or sidecar ``.txt`` files."""
    folder = Path(folder)
    metadata = folder / TRANSCRIPTS_FILE
    if metadata.is_file():
        return _read_ljspeech(inside(folder, metadata, str(metadata)))
    texts = {}
    for path in list_files(folder):
        if path.suffix.lower() == ".txt":
            text = " ".join(read_text(path).split())
            if text:
                texts[clip_id(path.relative_to(folder).with_suffix(""))] = text
    return texts


def clip_id(name: Path | str) -> str:
    """A transcript's key: ``name`` with its accents composed (NFC), so an id
    typed as "café" finds the clip macOS named with a combining accent."""
    return unicodedata.normalize("NFC", str(name))


def _read_ljspeech(metadata: Path) -> dict[str, str]:
    texts = {}
    for number, line in enumerate(read_text(metadata).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) < 2 or not fields[0].strip():
            raise DataError(f"{metadata}:{number}: expected 'id|text|normalized text' (LJSpeech format), got {line[:60]!r}")
        text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
        if not text.strip():
            raise DataError(f"{metadata}:{number}: empty transcript for {fields[0]!r}; write it or remove the line")
        texts[clip_id(fields[0].strip())] = " ".join(text.split())
    return texts


# -- cleaning ----------------------------------------------------------------------


def frame_db(audio: Any, sample_rate: int) -> Any:
    """RMS level in dB of consecutive frames of FRAME_SECONDS."""
    import numpy as np

    size = max(1, int(sample_rate * FRAME_SECONDS))
    count = max(1, len(audio) // size)
    frames = audio[: count * size].reshape(count, size) if len(audio) >= size else audio.reshape(1, -1)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def voiced_frames(audio: Any, sample_rate: int, top_db: float) -> Any:
    """Boolean per frame: louder than (loudest frame - top_db) and than -70 dBFS."""
    levels = frame_db(audio, sample_rate)
    return (levels > levels.max() - top_db) & (levels > -70)


def trim_silence(audio: Any, sample_rate: int, top_db: float) -> Any:
    """``audio`` without leading and trailing silence (empty if all silent)."""
    import numpy as np

    voiced = voiced_frames(audio, sample_rate, top_db)
    if not voiced.any():
        return audio[:0]
    size = max(1, int(sample_rate * FRAME_SECONDS))
    first, last = np.flatnonzero(voiced)[[0, -1]]
    return audio[first * size : (last + 1) * size]


def normalize_loudness(audio: Any, target_dbfs: float) -> Any:
    """Scale to an RMS of ``target_dbfs``, but never let peaks clip."""
    import numpy as np

    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    if rms <= 0:
        return audio
    gain = 10 ** (target_dbfs / 20) / rms
    peak = float(np.abs(audio).max()) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return (audio * gain).astype(np.float32)


def split_on_silence(audio: Any, sample_rate: int, settings: AudioSettings) -> list[Any]:
    """Cut ``audio`` into pieces of at most ``max_seconds``, each cut in the
    middle of the latest pause that keeps the piece under the limit (a hard
    cut at the limit where there is no pause). Pauses are judged against the
    recording's noise floor (``speech_frames``), so hum and hiss do not hide them."""
    import numpy as np

    size = max(1, int(sample_rate * FRAME_SECONDS))
    voiced = speech_frames(audio, sample_rate)
    pause = max(1, int(settings.min_pause_seconds / FRAME_SECONDS))
    centres = [start + length // 2 for start, length in _silent_runs(voiced) if length >= pause]
    limit = int(settings.max_seconds / FRAME_SECONDS)
    pieces, start = [], 0
    total = len(voiced)
    while total - start > limit:
        candidates = [c for c in centres if start < c <= start + limit]
        cut = candidates[-1] if candidates else start + limit
        pieces.append(audio[start * size : cut * size])
        start = cut
    pieces.append(audio[start * size :])
    return [np.ascontiguousarray(p) for p in pieces]


#: Where speech begins between a recording's noise floor (its 5th percentile
#: frame level) and its speech level (90th percentile), in dB: a pause in a
#: recording with hum or hiss 30 dB under the voice is still a pause, which
#: a threshold under the loudest frame (``voiced_frames``) misses.
SPEECH_SHARE = 0.35


def speech_frames(audio: Any, sample_rate: int) -> Any:
    """Whether each FRAME_SECONDS frame holds speech, judged against the
    recording's own noise floor (``SPEECH_SHARE``)."""
    import numpy as np

    levels = frame_db(audio, sample_rate)
    floor = max(float(np.percentile(levels, 5)), -80.0)  # digital silence counts as -80 dBFS
    speech = float(np.percentile(levels, 90))
    return levels > floor + SPEECH_SHARE * (speech - floor)


def pauses(audio: Any, sample_rate: int, min_seconds: float) -> list[tuple[float, float]]:
    """(start, end) in seconds of every pause of ``audio`` at least
    ``min_seconds`` long (``speech_frames``: over a noise floor too)."""
    return [(start * FRAME_SECONDS, (start + length) * FRAME_SECONDS)
            for start, length in _silent_runs(speech_frames(audio, sample_rate))
            if length * FRAME_SECONDS >= min_seconds - 1e-9]


def _silent_runs(voiced: Any) -> list[tuple[int, int]]:
    runs, start = [], None
    for index, flag in enumerate(list(voiced) + [True]):
        if not flag and start is None:
            start = index
        elif flag and start is not None:
            runs.append((start, index - start))
            start = None
    return runs


# -- the folder --------------------------------------------------------------------


#: ``cut_long(audio, sample_rate, text)``: (start, end, text) of each piece of a
#: long transcribed recording, or a ``DataError`` saying why it cannot be cut.
LongClipCutter = Callable[[Any, int, str], Sequence[tuple[int, int, str]]]
#: ``transcribe(audio, sample_rate)``: the words spoken in a prepared recording
#: (mono, trimmed, normalised), or a ``DataError`` saying why there are none it
#: trusts. Its ``name`` attribute (e.g. "Whisper tiny.en") is shown in the summary.
Transcriber = Callable[[Any, int], str]


def prepare_folder(folder: Path, sample_rate: int, settings: AudioSettings = AudioSettings(),
                   need_text: bool = True, cut_long: LongClipCutter | None = None,
                   transcribe: Transcriber | None = None, show: bool = False) -> PreparedAudio:
    """Every usable clip of ``folder`` at ``sample_rate``; see the module docstring.
    A transcribed clip longer than ``settings.max_seconds`` is cut by
    ``cut_long``, or refused without one. With ``need_text``, a recording
    without a transcript is given one by ``transcribe``, or refused without
    one; a long one is split at its pauses first and each part heard alone.
    ``show``: a progress bar over the files."""
    from lorakit.progress import work_progress

    folder = require_folder(Path(folder), f"audio clips ({AUDIO_FORMATS})")
    files = list_files(folder, contained=True)  # first: links out of the folder are refused before anything is read
    texts = read_transcripts(folder)
    prepared = PreparedAudio(transcribed_by=getattr(transcribe, "name", "speech recognition"))
    used = set()
    readers: dict[str, list[Path]] = {}  # transcript id -> the recordings that take it
    recordings = [path for path in files if path.suffix.lower() in AUDIO_SUFFIXES]
    for path in files:
        if path.suffix.lower() not in AUDIO_SUFFIXES and path.suffix.lower() != ".txt" and path.name != TRANSCRIPTS_FILE:
            prepared.rejected.append((str(path.relative_to(folder)), f"not an audio file ({AUDIO_FORMATS})"))
    with work_progress("preparing clips", len(recordings), enabled=show) as advance:
        for path in recordings:
            relative = path.relative_to(folder)
            key = clip_id(relative.with_suffix(""))
            key = key if key in texts else clip_id(path.stem)
            text = texts.get(key)
            used.update({key, clip_id(path.stem)})
            if text:
                readers.setdefault(key, []).append(path)
            _prepare_file(path, str(relative), text, sample_rate, settings, need_text, prepared, cut_long,
                          transcribe)
            advance()
    _warn_shared_transcripts(readers)
    for key in sorted(set(texts) - used):
        prepared.rejected.append((key, "transcript without an audio file"))
    if not prepared.clips:
        reasons = rejected_note(prepared.rejected) or "the folder holds no audio files"
        raise DataError(f"{folder} has no usable clips ({reasons}); add recordings ({AUDIO_FORMATS})"
                        + (" with transcripts in metadata.csv or .txt files" if need_text else ""))
    return prepared


def _warn_shared_transcripts(readers: dict[str, list[Path]]) -> None:
    """Warn about a transcript that several recordings take (``a.wav`` and
    ``a.flac``, or ``x/a.wav`` and ``y/a.wav`` with one metadata.csv id):
    each is used with it, most often a duplicate export."""
    for key, paths in readers.items():
        if len(paths) > 1:
            warn(f"{' and '.join(map(str, paths))} share the transcript {key!r}: each is used with it. If one is a "
                 "duplicate export, remove it; if they say different things, give each its own transcript")


def _prepare_file(path: Path, name: str, text: str | None, sample_rate: int, settings: AudioSettings,
                  need_text: bool, prepared: PreparedAudio, cut_long: LongClipCutter | None = None,
                  transcribe: Transcriber | None = None) -> None:
    add_one = f"add a line to {TRANSCRIPTS_FILE} or a {path.stem}.txt"
    if need_text and not text and transcribe is None:
        prepared.rejected.append((name, f"no transcript: {add_one}"))
        return
    try:
        audio, rate = load_audio(path)
    except BrokenSamples:
        raise
    except DataError as exc:
        prepared.rejected.append((name, str(exc).split(": ", 1)[-1]))
        return
    if rate != sample_rate:
        import soxr

        audio = soxr.resample(audio, rate, sample_rate, quality="HQ").astype("float32")
    audio = trim_silence(audio, sample_rate, settings.top_db)
    if len(audio) == 0:
        prepared.rejected.append((name, "silent"))
        return
    audio = normalize_loudness(audio, settings.target_dbfs)
    if not need_text or text:
        _add_pieces(name, name, audio, text, sample_rate, settings, prepared, cut_long, first=0)
        return
    # A long one is split at its pauses first, as a recording is when no text is
    # needed, and each part heard on its own: a doubtful stretch loses one
    # part, not an hour, and no part needs cutting at its sentences.
    long = len(audio) > settings.max_seconds * sample_rate
    parts = split_on_silence(audio, sample_rate, settings) if long else [audio]
    added = 0  # clips of the file so far: each part's are numbered on from them
    for number, part in enumerate(parts, start=1):
        label = name if len(parts) == 1 else f"{name}{PART_LABEL}{number})"
        part = trim_silence(part, sample_rate, settings.top_db)
        if len(part) == 0:
            prepared.rejected.append((label, "silent"))
            continue
        try:
            heard = transcribe(part, sample_rate)
        except DataError as exc:
            prepared.rejected.append((label, f"no transcript, and speech recognition gave none it trusts ({exc}): "
                                             f"{add_one}"))
            continue
        prepared.transcribed[label] = heard
        added += _add_pieces(name, label, part, heard, sample_rate, settings, prepared, cut_long, first=added)


def _add_pieces(name: str, label: str, audio: Any, text: str | None, sample_rate: int, settings: AudioSettings,
                prepared: PreparedAudio, cut_long: LongClipCutter | None, first: int) -> int:
    """Add the clips of ``audio`` (all of file ``name``, or its part ``label``),
    numbered from ``first``: itself, or its pieces when it is long; rejected
    pieces are listed with why. Returns how many were added."""
    seconds = len(audio) / sample_rate
    was_cut = False
    pieces: list[tuple[Any, str | None]] = [(audio, text)]
    if seconds > settings.max_seconds and text:
        too_long = f"{seconds:.1f} s is longer than {settings.max_seconds} s"
        if cut_long is None:
            prepared.rejected.append((label, f"{too_long} and its transcript cannot be split with it; cut the clip "
                                             "and its text"))
            return 0
        try:
            cuts = cut_long(audio, sample_rate, text)
        except DataError as exc:
            prepared.rejected.append((label, f"{too_long} and could not be cut at its sentences: {exc}"))
            return 0
        pieces = [(trim_silence(audio[start:end], sample_rate, settings.top_db), words) for start, end, words in cuts]
        was_cut = True
    elif seconds > settings.max_seconds:
        pieces = [(piece, None) for piece in split_on_silence(audio, sample_rate, settings)]
    added = 0
    for index, (piece, words) in enumerate(pieces):
        piece_label = label if len(pieces) == 1 else f"{label} (piece {index + 1})"
        seconds = len(piece) / sample_rate
        if seconds < settings.min_seconds:
            prepared.rejected.append((piece_label, f"{seconds:.2f} s is shorter than {settings.min_seconds} s"))
        elif seconds > settings.max_seconds:  # sentences read without a pause to cut at
            prepared.rejected.append((piece_label, f"{seconds:.1f} s is longer than {settings.max_seconds} s: its "
                                                   f"sentences have no pause between them to cut at "
                                                   f"({(words or '')[:40]!r}...)"))
        else:
            prepared.clips.append(AudioClip(name, piece, sample_rate, words, first + index))
            added += 1
            if was_cut:  # counted as kept: a piece rejected above is listed with its reason
                prepared.cut[name] = prepared.cut.get(name, 0) + 1
    return added
