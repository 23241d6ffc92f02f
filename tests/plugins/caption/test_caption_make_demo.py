"""make_demo --quick builds a BLIP that transformers loads back."""

from lorakit_caption import make_demo


def test_quick_demo_builds_and_loads(tmp_path):
    from transformers import BlipForConditionalGeneration, BlipProcessor

    make_demo.main(["--out", str(tmp_path), "--quick"])
    assert (tmp_path / "model.safetensors").is_file()
    model = BlipForConditionalGeneration.from_pretrained(tmp_path)
    processor = BlipProcessor.from_pretrained(tmp_path)
    text = model.config.text_config
    assert processor.tokenizer.convert_tokens_to_ids("[DEC]") == text.bos_token_id
    assert processor.tokenizer.sep_token_id == text.sep_token_id
    assert model.config.vision_config.initializer_range == 0.02 and model.config.vision_config.patch_size == 8


def test_vocabulary_covers_every_caption_word():
    from lorakit_caption.synthetic import caption_words

    vocab = make_demo.vocabulary()
    assert set(caption_words()) <= set(vocab) and len(set(vocab.values())) == len(vocab)


def test_committed_demo_base_is_small():
    from lorakit_caption.task import DEMO_BASE

    size = sum(p.stat().st_size for p in DEMO_BASE.iterdir())
    assert (DEMO_BASE / "config.json").is_file() and size < 5_000_000
