"""Limits of caption generation, shared by the task's options and `lorakit
caption`'s flags; a module of its own so the command, registered at every
CLI start, does not import the task."""

#: The longest caption and the widest beam search a run or `lorakit caption` takes.
MAX_NEW_TOKENS, MAX_BEAMS = 512, 16
