"""Small things the serving tests share."""

import io


def png_bytes(color=(200, 40, 40), size=(32, 32)) -> bytes:
    """A PNG file's bytes: a plain square with a darker stripe."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle((0, size[1] // 2, size[0], size[1] // 2 + 4), fill=(20, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
