"""DICOM images read as a radiology viewer shows them: rescale and window,
MONOCHROME1, colour, first frame, files named as PACS exports name them, and
clear errors for files that hold no image or cannot be decoded.

Real scans come from the test files pydicom's wheel carries; the synthetic
ones are written here with known values, so each mapping is checked exactly.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from lorakit.api import DataError, check_image, is_image, list_files, load_images, open_rgb
from lorakit.data import images as image_module

pydicom = pytest.importorskip("pydicom")  # lorakit[caption] and lorakit[vqa] bring it
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

REAL = Path(pydicom.__file__).parent / "data" / "test_files"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", **attributes) -> Path:
    """A Part 10 file holding ``pixels`` (uint16 / int16 grey frames, or uint8 RGB)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    data = Dataset()
    data.file_meta = meta
    data.SOPClassUID, data.SOPInstanceUID, data.Modality = CT_IMAGE, meta.MediaStorageSOPInstanceUID, "CT"
    colour = photometric == "RGB"
    frames = pixels.shape[0] if pixels.ndim == (4 if colour else 3) else 1
    data.Rows, data.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    data.SamplesPerPixel = 3 if colour else 1
    data.PhotometricInterpretation = photometric
    data.BitsAllocated = 8 * pixels.dtype.itemsize
    data.BitsStored = attributes.pop("BitsStored", data.BitsAllocated)
    data.HighBit = data.BitsStored - 1
    data.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if colour:
        data.PlanarConfiguration = 0
    if frames > 1:
        data.NumberOfFrames = frames
    for name, value in attributes.items():
        setattr(data, name, value)
    data.PixelData = pixels.tobytes()
    data.save_as(path, enforce_file_format=True)
    return path


def grey(path) -> np.ndarray:
    opened = open_rgb(path)
    assert opened.error is None, opened.error
    pixels = np.asarray(opened.image)
    assert np.array_equal(pixels[..., 0], pixels[..., 2])  # grey stays grey in RGB
    return pixels[..., 0].astype(int)


def test_ct_in_hounsfield_units_is_shown_through_its_window(tmp_path):
    # Stored values 864..1264 with intercept -1024 are HU -160..240: the soft-tissue window 40 / 400.
    hounsfield = np.array([[-1000, -160, 40, 240, 1000]])
    path = write_dicom(tmp_path / "ct.dcm", (hounsfield + 1024).astype(np.uint16), RescaleSlope=1,
                       RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    assert grey(path).tolist() == [[0, 0, 128, 255, 255]]


def test_without_a_window_the_stored_range_is_stretched_not_a_12_bit_image_in_black(tmp_path):
    path = write_dicom(tmp_path / "xray.dcm", np.array([[0, 1024, 4095]], np.uint16), BitsStored=12)
    assert grey(path).tolist() == [[0, 64, 255]]  # as 16-bit data it would be 0..16 of 255


def test_monochrome1_is_inverted(tmp_path):
    values = np.array([[0, 100, 200]], np.uint16)
    normal = grey(write_dicom(tmp_path / "m2.dcm", values))
    inverted = grey(write_dicom(tmp_path / "m1.dcm", values, photometric="MONOCHROME1"))
    assert normal.tolist() == [[0, 128, 255]] and inverted.tolist() == [[255, 128, 0]]


def test_a_multi_frame_file_gives_its_first_frame(tmp_path):
    frames = np.stack([np.array([[0, 50, 100]], np.uint16), np.array([[100, 50, 0]], np.uint16)])
    assert grey(write_dicom(tmp_path / "cine.dcm", frames)).tolist() == [[0, 128, 255]]


def test_colour_is_the_same_picture_whatever_the_encoding():
    """RGB in RLE at 8, 16 and 32 bits a sample, in JPEG lossless
    (python-gdcm), and lossy as baseline JPEG and YBR: one picture."""
    plain = np.asarray(open_rgb(REAL / "SC_rgb_rle.dcm").image).astype(int)
    assert plain.shape == (100, 100, 3) and len(np.unique(plain.reshape(-1, 3), axis=0)) > 5
    for lossless in ("SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit.dcm", "SC_rgb_jpeg_gdcm.dcm"):
        assert np.array_equal(np.asarray(open_rgb(REAL / lossless).image), plain), lossless
    for lossy in ("SC_rgb_dcmtk_+eb+cr.dcm", "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        assert np.abs(np.asarray(open_rgb(REAL / lossy).image).astype(int) - plain).mean() < 1, lossy


def test_real_scans_decode_in_every_transfer_syntax_lorakit_installs_decoders_for():
    """The same MR slice, uncompressed (three byte orders), RLE, JPEG 2000
    lossless and JPEG-LS lossless (python-gdcm), gives the same picture."""
    mr = grey(REAL / "MR_small.dcm")
    assert mr.shape == (64, 64) and mr.max() == 255 and 0 < mr.mean() < 255
    for encoded in ("MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm",
                    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        assert np.array_equal(grey(REAL / encoded), mr), encoded
    palette = np.asarray(open_rgb(REAL / "examples_palette.dcm").image)  # ultrasound with a colour palette
    assert palette.shape == (350, 800, 3) and palette.max() > 200


def test_dicom_files_are_told_by_their_bytes_and_named_as_pacs_exports_name_them(tmp_path):
    scan = (REAL / "CT_small.dcm").read_bytes()
    for name in ("IM000001", "1.2.840.113619.2.55.3.604688119", "scan.DCM", "scan.dicom", "renamed.png"):
        (tmp_path / name).write_bytes(scan)
        assert is_image(tmp_path / name), name
        assert np.array_equal(grey(tmp_path / name), grey(REAL / "CT_small.dcm")), name
    (tmp_path / "LICENSE").write_text("not an image")
    (tmp_path / "notes.2024").write_text("not an image")
    assert not any(is_image(tmp_path / name) for name in ("LICENSE", "notes.2024"))
    (tmp_path / "DICOMDIR").write_bytes(scan)  # the export's index: no image, and skipped as a README is
    assert not is_image(tmp_path / "DICOMDIR") and "DICOMDIR" not in {path.name for path in list_files(tmp_path)}


def test_files_without_an_image_or_undecodable_are_named_with_the_reason_and_the_fix(tmp_path):
    for name, reason in [("reportsi.dcm", r"a DICOM file without an image \(SR: .*\); leave it out"),
                         ("rtplan.dcm", r"a DICOM file without an image \(RTPLAN"),
                         ("MR_truncated.dcm", r"its DICOM pixel data .* cannot be decoded \(The number of bytes"),
                         # python-gdcm (in the extras) decodes JPEG lossless, not 12-bit JPEG
                         ("JPEG-lossy.dcm", r"its DICOM pixel data \(JPEG Extended .*\) cannot be decoded: "
                                            r"pip install pylibjpeg pylibjpeg-libjpeg")]:
        with pytest.raises(DataError, match=rf"{name}: {reason}"):
            check_image(REAL / name)
        assert re.match(reason, open_rgb(REAL / name).error)
    (tmp_path / "fake.dcm").write_bytes(b"x" * 300)
    with pytest.raises(DataError, match=r"fake\.dcm: named \.dcm but not a DICOM file"):
        check_image(tmp_path / "fake.dcm")
    with pytest.raises(DataError, match=r"fake\.dcm: "):
        load_images([tmp_path / "fake.dcm"])


def test_without_pydicom_a_dicom_file_says_what_to_install(monkeypatch):
    monkeypatch.setattr(image_module, "enable_dicom", lambda: False)
    assert "pip install pydicom" in open_rgb(REAL / "CT_small.dcm").error
    with pytest.raises(DataError, match=r"CT_small\.dcm: DICOM images need pydicom"):
        check_image(REAL / "CT_small.dcm")
