"""Speaker folders spoken by espeak-ng on the fly, for the voice tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples" / "voice"


def write_speaker(folder: Path, texts: list[str], voice=None) -> Path:
    """Clips of ``texts`` spoken by ``voice`` (the sample voice) with an LJSpeech metadata.csv."""
    from lorakit_voice import synthetic

    voice = voice or synthetic.SAMPLE_VOICE
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, text in enumerate(texts, start=1):
        synthetic.speak(voice, text, folder / f"{index:03d}.wav")
        rows.append(f"{index:03d}|{text}|{text}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
