"""How the commands report misuse: one ``error: ...`` line on stderr and exit status 2, as argparse does."""

from __future__ import annotations

import sys
from typing import NoReturn


class UsageError(Exception):
    """A foreseeable misuse (an option out of range, an unusable folder or checkpoint); the text names it."""


def exit_with(error: BaseException | str) -> NoReturn:
    """Print ``error: <text>`` on stderr and exit with status 2."""
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(2)
