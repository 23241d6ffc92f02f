"""No silently wrong training data, in the core's readers: real files written
here, decoded pixels and samples checked, and a ``warning:`` line naming every
file that is skipped or altered (an error for one that must not be used)."""

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from lorakit.api import DataError, check_image, list_files, load_audio, load_images, open_rgb, prepare_folder


def write_png16(path: Path, array) -> Path:
    """A 16-bit PNG of ``array`` (H x W grey, or H x W x 2/3/4 channels), written
    by hand: Pillow cannot write 16-bit colour."""
    data = np.asarray(array, dtype=">u2")
    channels = 1 if data.ndim == 2 else data.shape[2]
    height, width = data.shape[:2]
    rows = b"".join(b"\x00" + data[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, {1: 0, 2: 4, 3: 2, 4: 6}[channels], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def pixels(path: Path) -> np.ndarray:
    return np.asarray(load_images([path])[0])


def warnings_in(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


# -- images ------------------------------------------------------------------------


def test_16_bit_grey_maps_the_full_range_not_the_images_peak(tmp_path):
    grey = write_png16(tmp_path / "grey.png", np.full((8, 8), 32768))
    dark = write_png16(tmp_path / "dark.png", np.full((8, 8), 4096))
    assert Image.open(grey).mode == "I;16"
    assert np.abs(pixels(grey).astype(int) - 128).max() <= 1  # was 255: one flat white image
    assert np.abs(pixels(dark).astype(int) - 16).max() <= 1  # was 255 too: scaled by its own peak
    check_image(grey)


def test_16_bit_colour_pngs_keep_their_colours(tmp_path):
    # Pillow reads 16-bit RGB(A) as 8-bit RGB(A) itself; the loader must not undo that.
    colour = np.zeros((4, 4, 3)); colour[..., 0], colour[..., 1] = 65535, 32768
    assert np.array_equal(pixels(write_png16(tmp_path / "rgb.png", colour))[0, 0], [255, 128, 0])
    grey_alpha = np.full((4, 4, 2), 65535); grey_alpha[..., 0] = 32768
    assert np.array_equal(pixels(write_png16(tmp_path / "la.png", grey_alpha))[0, 0], [128, 128, 128])


def test_32_bit_grey_is_read_as_16_bit_data():
    from lorakit.data.images import to_rgb

    image = Image.fromarray(np.array([[0, 32768, 65535, 90000]], dtype=np.int32))
    assert image.mode == "I"
    assert np.asarray(to_rgb(image))[0, :, 0].tolist() == [0, 128, 255, 255]


def test_a_float_tiff_is_not_black(tmp_path):
    """Science and medical TIFFs store floats: 0..1 maps to 0..255, any other
    range is stretched (Pillow's own conversion clips 0..1 to black)."""
    ramp = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    Image.fromarray(ramp, "F").save(tmp_path / "unit.tif")
    Image.fromarray(ramp * 4000 - 1000, "F").save(tmp_path / "hounsfield.tif")
    expected = np.arange(256).reshape(16, 16)
    assert np.abs(pixels(tmp_path / "unit.tif")[..., 0].astype(int) - expected).max() <= 1
    assert np.abs(pixels(tmp_path / "hounsfield.tif")[..., 0].astype(int) - expected).max() <= 1


def test_transparent_pixels_become_white_with_a_warning_naming_the_file(tmp_path, capsys):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[:2, :, 3] = 200, 255  # red on top, fully transparent black below
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    decoded = pixels(path)
    assert decoded[0, 0].tolist() == [200, 0, 0] and decoded[3, 0].tolist() == [255, 255, 255]
    check_image(path)
    check_image(path)
    (line,) = warnings_in(capsys)  # once, however often the folder is checked
    assert str(path) in line and "50%" in line and "white" in line


def test_an_opaque_alpha_channel_is_no_warning(tmp_path, capsys):
    path = tmp_path / "opaque.png"
    Image.new("RGBA", (4, 4), (10, 20, 30, 255)).save(path)
    check_image(path)
    assert warnings_in(capsys) == [] and pixels(path)[0, 0].tolist() == [10, 20, 30]


def test_palette_transparency_is_composited_and_warned(tmp_path, capsys):
    path = tmp_path / "palette.png"
    image = Image.new("P", (4, 4), 0)
    image.putpalette([10, 20, 30] * 256)
    image.save(path, transparency=0)
    check_image(path)
    assert pixels(path)[0, 0].tolist() == [255, 255, 255]
    assert str(path) in warnings_in(capsys)[0]


def test_exif_orientation_is_applied_as_viewers_do(tmp_path):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: "rotate 90 degrees clockwise to view"
    Image.new("RGB", (8, 4), (255, 0, 0)).save(path, exif=exif)
    assert open_rgb(path).image.size == (4, 8)


# -- folders -----------------------------------------------------------------------


def test_a_symlink_out_of_a_training_folder_is_refused_by_its_name(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("secret")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "link.txt").symlink_to(outside / "private.txt")
    with pytest.raises(DataError, match="points outside the data folder") as error:
        list_files(folder, contained=True)
    assert str(folder / "link.txt") in str(error.value)
    assert list_files(folder) == [folder / "link.txt"]  # photos to caption may live elsewhere


def test_links_inside_the_folder_are_followed_and_odd_links_skipped_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").symlink_to(folder / "a.txt")
    (folder / "gone.txt").symlink_to(folder / "missing.txt")
    (folder / "more").symlink_to(folder / "sub")
    assert [p.name for p in list_files(folder)] == ["a.txt", "b.txt"]
    lines = warnings_in(capsys)
    assert any(str(folder / "gone.txt") in line and "broken symlink" in line for line in lines)
    assert any(str(folder / "more") in line and "folder" in line for line in lines)


def test_license_named_data_is_data(tmp_path):
    for name in ("license.png", "README.md", "LICENSE", "licence.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in list_files(tmp_path)] == ["license.png"]


# -- audio -------------------------------------------------------------------------


def tone(seconds: float = 1.5, rate: int = 16000, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def write_wav(path: Path, samples, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(samples), 16000, subtype=subtype)
    return path


def test_hard_clipped_audio_is_used_with_a_warning_naming_the_file(tmp_path, capsys):
    clipped = write_wav(tmp_path / "loud.wav", np.clip(tone(level=3.0), -1, 1))
    clean = write_wav(tmp_path / "clean.wav", tone(level=0.9))
    audio, rate = load_audio(clipped)
    assert rate == 16000 and len(audio) == 24000
    load_audio(clean)
    (line,) = warnings_in(capsys)
    assert str(clipped) in line and "hard-clipped" in line


def test_nan_samples_are_an_error_not_silence(tmp_path):
    samples = tone()
    samples[100:200] = np.nan
    samples[300] = np.inf
    path = write_wav(tmp_path / "broken.wav", samples, subtype="FLOAT")
    with pytest.raises(DataError) as error:
        load_audio(path)
    message = str(error.value)
    assert str(path) in message and "NaN/inf samples (101 of 24,000), not silent" in message


def test_a_folder_with_one_nan_clip_stops_while_a_silent_clip_is_only_rejected(tmp_path):
    folder = tmp_path / "clips"
    write_wav(folder / "a.wav", tone())
    write_wav(folder / "quiet.wav", np.zeros(24000, np.float32))
    assert prepare_folder(folder, 16000, need_text=False).rejected == [("quiet.wav", "silent")]
    broken = tone()
    broken[5] = np.nan
    write_wav(folder / "b.wav", broken, subtype="FLOAT")
    with pytest.raises(DataError, match="contains NaN/inf") as error:
        prepare_folder(folder, 16000, need_text=False)
    assert str(folder / "b.wav") in str(error.value) and "silent" in str(error.value)


def test_two_recordings_of_one_stem_are_both_used_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "clips"
    write_wav(folder / "a.wav", tone())
    write_wav(folder / "a.flac", tone(level=0.2))
    (folder / "a.txt").write_text("hello there")
    prepared = prepare_folder(folder, 16000)
    assert sorted(c.source for c in prepared.clips) == ["a.flac", "a.wav"]
    assert {c.text for c in prepared.clips} == {"hello there"}
    (line,) = warnings_in(capsys)
    assert str(folder / "a.flac") in line and str(folder / "a.wav") in line and "transcript" in line


def test_a_transcripts_file_linked_from_outside_is_refused_before_it_is_read(tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("a|hello|hello\n")
    folder = tmp_path / "clips"
    write_wav(folder / "a.wav", tone())
    os.symlink(outside, folder / "metadata.csv")
    with pytest.raises(DataError, match="points outside the data folder") as error:
        prepare_folder(folder, 16000)
    assert str(folder / "metadata.csv") in str(error.value)
