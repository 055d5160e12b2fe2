"""``python -m neuroloop_gpu.bench [options]``: the ``neuroloop bench`` subcommand on its own."""

from .cli import main

main()
