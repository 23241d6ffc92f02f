"""What the BLIP tasks (``caption``, ``vqa``) share: token ids and lengths of a
BLIP base, its image size, the probe image, the evaluation batch size,
image files turned into pixel values, and generated ids read back as text
with their token counts (``generated``).

A helper package, not a plugin: it registers nothing (no entry point) and
depends on no other plugin, only on ``lorakit.api``. Importing it stays
instant; torch is imported inside the functions that need it.
"""

from lorakit_blip.helpers import (
    EVAL_BATCH_SIZE,
    PROBE_SEED,
    batch_slices,
    bos_id,
    image_size,
    load_pixel_values,
    max_length,
    pixel_values,
    probe_pixels,
)

__all__ = ["EVAL_BATCH_SIZE", "PROBE_SEED", "batch_slices", "bos_id", "image_size", "load_pixel_values", "max_length",
           "pixel_values", "probe_pixels"]
