"""``python -m lorakit`` (and ``accelerate launch -m lorakit``) runs the CLI."""

from lorakit.cli import main

main()
