"""Reading a folder of tracks into windows of codec codes, with descriptions.

A track is any audio file the core reads (``lorakit.api.load_audio``). It is
made mono, resampled to the codec's rate, trimmed of leading and trailing
silence and loudness-normalised (the core's audio helpers in ``lorakit.api``;
to -12 dBFS), then cut into windows of
``window_seconds`` (a last partial window is kept, aligned to the end, when it
is at least half a window). Each window is encoded to codes once; the codes
are cached under the file's content, the codec and these settings, so a
second run reads them back instead of encoding.

Descriptions (the text MusicGen is conditioned on) come from
``metadata.jsonl`` (``{"file_name": ..., "text": ...}``) or a sidecar
``.txt`` beside each track (or a ``metadata.csv``, read as for voice
clips by ``lorakit.api.read_transcripts``); a track without one gets the trigger word, or
the folder's name ("lo-fi_jazz" -> "lo fi jazz").

A file that cannot be used (unreadable, silent, shorter than a window, an
implausible sample rate) is rejected with its reason and the rest go on; a
folder with nothing usable, a description naming no track, a track holding
NaN/inf samples (broken, not silent) or a symlink out of the folder is an
error. A hard-clipped track is used with a warning (when it is encoded; the
cache remembers codes, not warnings); tracks of one stem (``a.wav``, ``a.flac``)
share its sidecar description, with a warning naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorakit.api import (AUDIO_FORMATS, AUDIO_SUFFIXES, TRANSCRIPTS_FILE, AudioSettings, DataError, list_files,
                         load_audio, normalize_loudness, read_jsonl, read_transcripts, rejected_note, require_folder,
                         resolve_member, trim_silence, warn)

METADATA = "metadata.jsonl"
#: A last partial window is kept when it holds at least this much of a window.
TAIL_FRACTION = 0.5
#: Music is mastered louder than speech: -12 dBFS RMS (peaks never above
#: 0.99). A small codec also learns much faster at this level than at -20.
PREPARATION = AudioSettings(target_dbfs=-12.0)


@dataclass(frozen=True, eq=False)
class MusicExample:
    """One window: its codes ``(K, T)``, its description, and the track it
    comes from (``group``: the windows of a track stay in one split)."""

    clip: str
    description: str
    codes: Any
    group: str

    @property
    def frames(self) -> int:
        return int(self.codes.shape[-1])


@dataclass
class TrackFolder:
    """What reading a folder found: windows, rejected files, cache use."""

    examples: list[MusicExample] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    tracks: int = 0
    encoded: int = 0
    cached: int = 0

    def summary(self, frame_rate: int) -> dict[str, Any]:
        seconds = sum(e.frames for e in self.examples) / frame_rate
        return {"tracks": self.tracks, "windows": len(self.examples), "minutes": round(seconds / 60, 2),
                "descriptions": len({e.description for e in self.examples}),
                "rejected": [{"file": f, "reason": r} for f, r in self.rejected]}


@dataclass(frozen=True)
class Windowing:
    """How tracks become windows, at the codec's rate."""

    seconds: float
    sample_rate: int
    frame_rate: int

    @property
    def frames(self) -> int:
        return max(1, round(self.seconds * self.frame_rate))

    @property
    def samples(self) -> int:
        # Whole codec frames, so every window gives exactly ``frames`` codes.
        return self.frames * (self.sample_rate // self.frame_rate)

    def key(self) -> str:
        """Everything that changes the codes of a file, for the cache key."""
        p = PREPARATION
        return f"{self.sample_rate}|{self.samples}|{TAIL_FRACTION}|{p.top_db}|{p.target_dbfs}"


def window_starts(length: int, size: int) -> list[int]:
    """Sample offsets of the windows of a track of ``length`` samples."""
    if length < size:
        return []
    starts = list(range(0, length - size + 1, size))
    if length - (starts[-1] + size) >= TAIL_FRACTION * size:
        starts.append(length - size)
    return starts


def read_descriptions(folder: Path, tracks: list[Path]) -> dict[Path, str]:
    """Descriptions by track path, from metadata.jsonl or sidecar .txt files."""
    metadata = folder / METADATA
    if metadata.is_file():
        return _read_metadata(metadata, folder, set(tracks))
    by_stem: dict[str, list[Path]] = {}
    for track in tracks:
        by_stem.setdefault(str(track.relative_to(folder).with_suffix("")), []).append(track)
    texts = read_transcripts(folder)  # the core's sidecar reader, keyed by relative stem
    orphans = sorted(set(texts) - set(by_stem))
    if orphans:
        raise DataError(f"{folder}: descriptions without a track: {', '.join(f'{o}.txt' for o in orphans[:5])}; "
                        "add the track or remove the .txt")
    for stem in sorted(texts):
        if len(by_stem[stem]) > 1:
            warn(f"{' and '.join(map(str, by_stem[stem]))} share the description of {stem}: each is trained on "
                 "it; if one is a duplicate export, remove it")
    return {track: text for stem, text in texts.items() for track in by_stem[stem]}


def _read_metadata(metadata: Path, folder: Path, tracks: set[Path]) -> dict[Path, str]:
    texts: dict[Path, str] = {}
    for number, row in read_jsonl(metadata, '{"file_name": "track.wav", "text": "calm piano"}'):
        where = f"{metadata}:{number}"
        name, text = row.get("file_name"), row.get("text")
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: needs a 'file_name' naming a track in {folder}")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: needs a non-empty 'text' describing {name!r}")
        path = resolve_member(folder, name, where)
        if path not in tracks:
            raise DataError(f"{where}: describes {name!r}, but {folder} has no such audio track "
                            f"({', '.join(AUDIO_SUFFIXES)}); fix the file_name or remove the line")
        texts[path] = " ".join(text.split())
    return texts


def default_description(folder: Path, trigger: str) -> str:
    """The trigger word, else the folder's name as words."""
    if trigger:
        return trigger
    words = folder.resolve().name.replace("_", " ").replace("-", " ").split()
    return " ".join(words) or "music"


def read_tracks(folder: Path, codec: Any, decoder_codebooks: int, windowing: Windowing, cache: Any,
                trigger: str = "", show: bool = True) -> TrackFolder:
    """Every usable window of ``folder`` as codes; see the module docstring."""
    from lorakit.api import work_progress
    from lorakit_music.codes import codec_key

    folder = require_folder(Path(folder), f"music tracks ({AUDIO_FORMATS})").resolve()
    files = list_files(folder, contained=True)  # a symlink out of the folder is refused
    tracks = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    found = TrackFolder(tracks=len(tracks))
    for path in files:
        described = path.suffix.lower() == ".txt" or path.name in (METADATA, TRANSCRIPTS_FILE)
        if path.suffix.lower() not in AUDIO_SUFFIXES and not described:
            found.rejected.append((str(path.relative_to(folder)), f"not an audio file ({AUDIO_FORMATS})"))
    texts = read_descriptions(folder, tracks)
    fallback = default_description(folder, trigger)
    codec_print = codec_key(codec)
    with work_progress("tokenising tracks", len(tracks), enabled=show) as advance:
        for path in tracks:
            name = str(path.relative_to(folder))
            text = texts.get(path)
            description = f"{trigger} {text}" if trigger and text else (text or fallback)
            codes = _track_codes(path, name, codec, codec_print, decoder_codebooks, windowing, cache, found)
            for index, window in enumerate(codes if codes is not None else []):
                found.examples.append(MusicExample(f"{name}#{index + 1}", description, window, name))
            advance()
    if not found.examples:
        reasons = rejected_note(found.rejected) or "the folder holds no audio tracks"
        raise DataError(f"{folder} has no usable music ({reasons}); add tracks of at least {windowing.seconds:g} s "
                        f"({AUDIO_FORMATS}), or lower --window_seconds")
    return found


def _track_codes(path: Path, name: str, codec: Any, codec_print: str, decoder_codebooks: int,
                 windowing: Windowing, cache: Any, found: TrackFolder) -> Any | None:
    """The codes ``(windows, K, T)`` of one track, from the cache or encoded;
    None (and a rejection) when the track cannot be used."""
    from lorakit_music.codes import encode_windows

    key = cache.key(path, codec_print, windowing.key())
    codes = cache.get(key)
    if codes is not None:
        found.cached += 1
        return codes
    try:
        audio, rate = load_audio(path)
    except DataError as error:
        if getattr(error, "fatal", False):  # NaN/inf samples: a broken file stops the run
            raise
        found.rejected.append((name, str(error).split(": ", 1)[-1]))
        return None
    windows = prepare_track(audio, rate, windowing)
    if isinstance(windows, str):
        found.rejected.append((name, windows))
        return None
    codes = encode_windows(codec, windows, decoder_codebooks)
    cache.put(key, codes)
    found.encoded += 1
    return codes


def prepare_track(audio: Any, rate: int, windowing: Windowing) -> Any:
    """Windows ``(N, samples)`` of a mono track at the codec's rate, trimmed
    and loudness-normalised, or the reason (text) it cannot be used. The demo
    base is pretrained on windows made by this same function."""
    import numpy as np

    if rate != windowing.sample_rate:
        import soxr

        audio = soxr.resample(audio, rate, windowing.sample_rate, quality="HQ").astype(np.float32)
    audio = trim_silence(audio, windowing.sample_rate, PREPARATION.top_db)
    if len(audio) == 0:
        return "silent"
    starts = window_starts(len(audio), windowing.samples)
    if not starts:
        return (f"{len(audio) / windowing.sample_rate:.1f} s of music is shorter than one window "
                f"({windowing.seconds:g} s); use a longer track or a shorter --window_seconds")
    audio = normalize_loudness(audio, PREPARATION.target_dbfs)
    return np.stack([audio[s : s + windowing.samples] for s in starts])
