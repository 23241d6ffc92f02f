"""Tiny image files for the caption tests."""

from pathlib import Path


def write_png(path: Path, color=(200, 30, 30), size=(16, 16)) -> Path:
    """A small solid-colour PNG at ``path``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression
    bomb) with a few bytes of data: an image file that must never be decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" * (1 + width // 8) * 4)  # the first rows only
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path
