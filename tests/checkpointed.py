"""A model run under non-reentrant activation checkpointing, as
``--train.gradient_checkpointing`` runs each block of a Hugging Face base."""

from torch import nn
from torch.utils.checkpoint import checkpoint


class Checkpointed(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return checkpoint(self.inner, x, use_reentrant=False)
