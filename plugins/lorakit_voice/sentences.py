"""Cutting a text to speak into sentences, as coqui's and Piper's synthesizers do.

VITS speaks one utterance in one pass, and its memory and time grow with the
utterance: a 4,000-character text (what an OpenAI speech client may send)
spoken whole held gigabytes. Spoken sentence by sentence, a text of any length
costs what its longest sentence costs, and each sentence is the length of the
clips the voice learned from. Sentences are found by pysbd (coqui-tts's own
segmenter, which knows "Dr." and "$5.50" do not end one), with the rules of
the voice's language where pysbd has them (German "z. B." and "am 3. Mai" end
no sentence; English rules otherwise); a sentence longer
than ``MAX_PART_CHARS`` is cut at its last comma, semicolon or colon that
fits, else at a space.
"""

from __future__ import annotations

import re

#: The longest piece spoken in one pass (about 20 seconds of speech).
MAX_PART_CHARS = 300

_CLAUSE_END = re.compile(r"[,;:](?=\s)")


def split_sentences(text: str, max_chars: int = MAX_PART_CHARS, language: str = "en") -> list[str]:
    """The sentences of ``text`` (whitespace collapsed) in ``language`` (an
    espeak-ng or ISO code: ``de``, ``en-us``), none longer than ``max_chars``
    unless a single word is."""
    import pysbd
    from pysbd.languages import LANGUAGE_CODES

    text = " ".join(text.split())
    if not text:
        return []
    code = language_code(language)
    rules = code if code in LANGUAGE_CODES else "en"
    found = [s.strip() for s in pysbd.Segmenter(language=rules, clean=False).segment(text)]
    return [part for sentence in found if sentence for part in _parts(sentence, max_chars)]


def language_code(language: str) -> str:
    """The two- or three-letter code of an espeak-ng or locale name: ``en-us``, ``de_DE`` -> ``en``, ``de``."""
    return language.split("-")[0].split("_")[0].lower()


def _parts(sentence: str, max_chars: int) -> list[str]:
    parts = []
    while len(sentence) > max_chars:
        head = sentence[: max_chars + 1]
        clauses = [m.end() for m in _CLAUSE_END.finditer(head)]
        cut = clauses[-1] if clauses else head.rfind(" ")
        if cut <= 0:  # one word longer than the limit: cut it at the next space
            cut = sentence.find(" ", max_chars)
            if cut < 0:
                break
        parts.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return parts + [sentence] if sentence else parts
