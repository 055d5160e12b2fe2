"""The fused kernel's build: one ninja whatever PATH holds, no rebuild between shells, no hang after a
killed build, a notice while the first build runs."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from torch.utils import cpp_extension

from neuroloop_gpu.network import fused
from neuroloop_gpu.network.fused import _build_name, fused_backend_problem

pytestmark = pytest.mark.skipif(fused_backend_problem() is not None, reason="the fused kernel cannot be built here")

FIRST_WINDOW = """
import sys, time
start = time.perf_counter()
from neuroloop_gpu import NetworkBatch, NetworkParams, SimConfig
net = NetworkBatch(1, NetworkParams(num_e=20, num_i=5), SimConfig(duration=20.0, seed=0), device="cpu",
                   backend="fused")
net.run_window()
print(time.perf_counter() - start)
"""


def first_window(env: dict, timeout: float = 600) -> tuple[float, str]:
    """Seconds to a fused network's first window in a fresh process (import included), and its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_WINDOW], capture_output=True, text=True, env=env, timeout=timeout, check=True
    )
    return float(done.stdout.strip().splitlines()[-1]), done.stderr


def built_library() -> Path:
    name = _build_name()
    return Path(cpp_extension.get_default_build_root()) / name / f"{name}.so"


def test_no_rebuild_whatever_ninja_comes_first_on_path():
    first_window(dict(os.environ))  # built (or already there) with the package's ninja
    library = built_library()
    stamp = library.stat().st_mtime_ns
    system_first = {**os.environ, "PATH": os.pathsep.join(["/usr/bin", "/bin", os.environ.get("PATH", "")])}
    _, stderr = first_window(system_first)
    assert library.stat().st_mtime_ns == stamp and "building the fused CPU kernel" not in stderr


def test_a_killed_build_leaves_no_hang():
    first_window(dict(os.environ))
    stale = built_library().with_name("lock")  # what torch's baton leaves when its build is killed
    stale.write_text("")
    try:
        first_window(dict(os.environ), timeout=120)  # torch alone would wait for it forever
    finally:
        stale.unlink(missing_ok=True)
    assert not stale.exists()


@pytest.mark.slow
def test_first_build_prints_a_notice(tmp_path):
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    start = time.perf_counter()
    _, stderr = first_window(env, timeout=900)
    assert "neuroloop_gpu: building the fused CPU kernel (first use" in stderr, stderr
    assert time.perf_counter() - start > 5  # it really built
    seconds, stderr = first_window(env)
    assert "building" not in stderr


def test_the_pip_ninja_leads_path_even_where_its_package_cannot_name_it(monkeypatch):
    """In a venv that sees the package in its base's site-packages, ``ninja.BIN_DIR`` is empty: the
    executable is found from the package's installed files, and PATH never gains an empty entry."""
    ninja = pytest.importorskip("ninja")
    # the package's own answer, or inside such a venv the base's scripts folder, where pip put the executable
    real = ninja.BIN_DIR or os.path.join(sys.base_prefix, "bin")
    assert os.path.isfile(os.path.join(real, "ninja"))
    monkeypatch.setattr(ninja, "BIN_DIR", "")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    fused._ninja_on_path()
    assert os.environ["PATH"] == os.pathsep.join([real, "/usr/bin", "/bin"])
    fused._ninja_on_path()  # once is enough
    assert os.environ["PATH"] == os.pathsep.join([real, "/usr/bin", "/bin"])
    monkeypatch.setattr(fused.importlib.metadata, "files", lambda name: [])  # no record of the executable
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    fused._ninja_on_path()
    assert os.environ["PATH"] == "/usr/bin:/bin"
