"""No silently wrong caption data: two images of one stem, symlinks out of a
sidecar folder, and the one loader behind training and batch captioning."""

import numpy as np
import pytest
from caption_images import write_png
from PIL import Image

from lorakit.api import DataError, load_images
from lorakit_caption.data import read_caption_folder
from lorakit_caption.loading import ImageFiles


def test_two_images_of_one_stem_both_train_on_its_caption_with_a_warning(tmp_path, capsys):
    write_png(tmp_path / "a.png")
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("a red square")
    examples = read_caption_folder(tmp_path)
    assert sorted(e.image for e in examples) == [str(tmp_path / "a.jpg"), str(tmp_path / "a.png")]
    assert {e.text for e in examples} == {"a red square"}
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert str(tmp_path / "a.jpg") in line and str(tmp_path / "a.png") in line and "a.txt" in line


@pytest.mark.parametrize("linked", ["b.png", "b.txt"])
def test_a_sidecar_symlink_out_of_the_folder_is_refused_by_name(tmp_path, linked):
    outside = tmp_path / "outside"
    write_png(outside / "b.png")
    (outside / "b.txt").write_text("a caption written by hand")
    folder = tmp_path / "data"
    write_png(folder / "a.png")
    (folder / "a.txt").write_text("a red square")
    for name in ("b.png", "b.txt"):
        if name == linked:
            (folder / name).symlink_to(outside / name)
        elif name == "b.png":
            write_png(folder / name)
        else:
            (folder / name).write_text("mine")
    with pytest.raises(DataError, match="points outside the data folder") as error:
        read_caption_folder(folder)
    assert str(folder / linked) in str(error.value)


def test_training_and_batch_captioning_decode_the_same_pixels(tmp_path):
    grey = np.full((8, 8), 32768, dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    cutout = np.zeros((8, 8, 4), np.uint8)
    cutout[..., 2], cutout[:4, :, 3] = 200, 255
    Image.fromarray(cutout, "RGBA").save(tmp_path / "cutout.png")
    paths = [str(tmp_path / "grey16.png"), str(tmp_path / "cutout.png")]
    trained = [np.asarray(image) for image in load_images(paths)]
    files = ImageFiles(paths, lambda images, return_tensors: {"pixel_values": [np.asarray(images[0])]})
    captioned = [files[index][1] for index in range(len(paths))]
    for train, caption in zip(trained, captioned):
        assert np.array_equal(train, caption)
    assert abs(int(trained[0][0, 0, 0]) - 128) <= 1  # mid-grey, not white
    assert trained[1][7, 0].tolist() == [255, 255, 255] and trained[1][0, 0].tolist() == [0, 0, 200]
