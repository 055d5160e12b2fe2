"""One output folder, one run: how a command claims its ``--out`` before doing any work.

A run's files are only worth something together (a checkpoint and the log that led to it, a table
and the traces it summarises), so a folder belongs to one run:

- a folder that already holds a run's files is refused, unless the caller asks to overwrite it;
  then those files, and only those, are deleted before the new run starts, so two runs never mix;
- a folder that is an input's own folder (a policy's training run) is refused: the outputs would
  replace or copy onto the inputs;
- a lock (``filelock``: an OS lock that dies with its process, so a killed run leaves nothing
  stale) keeps a second process out while the first one writes;
- an output path that is a file, or a folder that cannot be created or written, fails here,
  before the first simulated step, not after the results are computed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = ".neuroloop.lock"
# Everything a neuroloop command writes into its folder (tests/test_run_folder.py checks the list against
# what the commands write). A leaf module: the training loop imports it too.
RUN_FILES = frozenset(
    {
        "summary.json",
        "open_loop.png",  # simulate
        "checkpoint.pt",
        "checkpoint.pt.partial",
        "train_log.csv",
        "training.png",
        "imitation.pt",
        "tensorboard",  # train
        "evaluation.json",
        "evaluation.csv",
        "evaluation.md",
        "evaluation.npz",  # evaluate
        "kop.png",
        "weight.png",
        "rasters.png",
        "actions.png",
        "energy_vs_synchrony.png",
        "sweep.json",
        "sweep.csv",
        "sweep.png",  # sweep (evaluate copies sweep.json beside its tables)
    }
)


class RunFolderError(ValueError):
    """An output folder that cannot take this run (used, locked, an input's folder, not writable)."""


def run_files(folder: Path) -> list[str]:
    """The names in ``folder`` that a neuroloop run wrote, sorted."""
    return sorted(path.name for path in folder.iterdir() if path.name in RUN_FILES) if folder.is_dir() else []


@contextmanager
def claim(
    out: Path | str,
    *,
    overwrite: bool = False,
    keep: Collection[str] = (),
    inputs: Iterable[Path] = (),
    option: str = "--out",
) -> Iterator[Path]:
    """Hold ``out`` for one run: checked, locked and cleared of an earlier run's files (see module doc).

    ``keep`` names run files that belong to this run already (a resumed training's checkpoint and log);
    ``inputs`` are files the run reads, whose folders it must not write into; ``option`` is how the
    caller's user names the folder in errors.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{option} {out} is a file; give a folder (it is created if missing)")
    for source in inputs:
        if Path(source).parent.resolve() == out.resolve():
            raise RunFolderError(f"{option} {out} is the folder of the input {source}; write the results elsewhere")
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as error:
        raise RunFolderError(f"{option} {out} cannot be written ({error.strerror or error})") from None
    lock = FileLock(out / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunFolderError(
            f"{option} {out} is in use by another neuroloop process (it holds {out / LOCK_NAME}); "
            "wait for it to finish or choose another folder"
        ) from None
    try:
        earlier = [name for name in run_files(out) if name not in keep]
        if earlier and not overwrite:
            raise RunFolderError(
                f"{option} {out} holds an earlier run ({', '.join(earlier)}); choose another "
                "folder, or pass --overwrite to delete those files first"
            )
        for name in earlier:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        yield out
    finally:
        lock.release()
