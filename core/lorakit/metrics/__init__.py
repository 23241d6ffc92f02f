"""Shared scorers any plugin may use (captioning: BLEU-4, CIDEr)."""
