"""Fixtures of the VQA plugin's tests: the committed demo base and small
synthetic question folders made on the fly."""

import pytest


@pytest.fixture(scope="session")
def vqa_base():
    """The committed demo base, loaded once for the session."""
    from lorakit_vqa.task import VqaTask

    return VqaTask().load_base("demo")


@pytest.fixture
def small_folder(tmp_path):
    """Twelve inspection questions (some with several answers) in a folder."""
    from lorakit_vqa import synthetic

    folder = tmp_path / "small"
    synthetic.write_dataset(synthetic.render("inspection", 12, seed=5), folder, "q")
    return folder
