"""make_demo --quick builds a BLIP VQA model that transformers loads back."""

from lorakit_vqa import make_demo


def test_quick_demo_builds_and_loads(tmp_path):
    from transformers import BlipForQuestionAnswering, BlipProcessor

    from lorakit_vqa.task import VqaTask

    make_demo.main(["--out", str(tmp_path), "--quick"])
    assert (tmp_path / "model.safetensors").is_file()
    model = BlipForQuestionAnswering.from_pretrained(tmp_path)
    processor = BlipProcessor.from_pretrained(tmp_path)
    text = model.config.text_config
    assert processor.tokenizer.convert_tokens_to_ids("[DEC]") == text.bos_token_id
    assert model.config.architectures == ["BlipForQuestionAnswering"]
    assert VqaTask().load_base(str(tmp_path)).model.config.vision_config.patch_size == 8


def test_demo_shares_the_caption_demo_tokenizer():
    from transformers import BlipProcessor

    from lorakit_caption.task import DEMO_BASE as CAPTION_DEMO
    from lorakit_vqa.loading import DEMO_BASE

    ours, theirs = BlipProcessor.from_pretrained(DEMO_BASE), BlipProcessor.from_pretrained(CAPTION_DEMO)
    assert ours.tokenizer.get_vocab() == theirs.tokenizer.get_vocab()


def test_committed_demo_base_is_small():
    from lorakit_vqa.loading import DEMO_BASE

    size = sum(p.stat().st_size for p in DEMO_BASE.iterdir())
    assert (DEMO_BASE / "config.json").is_file() and size < 5_000_000
