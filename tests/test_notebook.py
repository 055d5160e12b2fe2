"""notebooks/throughput.ipynb runs headless at a tiny size and draws its figure."""

import json
import pickle
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_figures import assert_png_shows, assert_throughput_figure, assert_traffic_figure

from neuroloop_gpu.bench import plot_results

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "throughput.ipynb"

# Injected after the parameters, before the notebook imports `display`: it keeps what is displayed.
SPY = """import IPython.display
_shown = []
def _keep(*objects, _display=IPython.display.display, **kwargs):
    _shown.extend(objects)
    return _display(*objects, **kwargs)
IPython.display.display = _keep
"""
# Appended: the displayed figures and the data they were drawn from, for the test to read back.
DUMP = """import pickle
from matplotlib.figure import Figure
with open({path!r}, "wb") as file:
    pickle.dump({{"figures": [o for o in _shown if isinstance(o, Figure)], "docs": docs, "traffic": traffic}}, file)
"""


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


@pytest.mark.timeout(300)
def test_notebook_runs_at_tiny_size(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    overrides = nbformat.v4.new_code_cell(
        f'DEVICE = "cpu"\nSIZES = ["20/5"]\nBATCHES = [1, 2]\nWINDOWS = 1\nREPEATS = 1\n'
        f'TARGETS = ["simulator", "torchrl-env"]\nPEERS = ["reference"]\nOUT_DIR = {str(tmp_path / "out")!r}\n'
        f'TRAFFIC_SIZE = "20/5"\nTRAFFIC_BATCH = 2\n'
    )
    overrides.metadata["tags"] = ["injected-parameters"]
    notebook.cells[index + 1 : index + 1] = [overrides, nbformat.v4.new_code_cell(SPY)]
    shown = tmp_path / "shown.pickle"
    notebook.cells.append(nbformat.v4.new_code_cell(DUMP.format(path=str(shown))))
    NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if out.output_type == "display_data" and "image/png" in out.get("data", {})]
    assert len(images) == 2, "the notebook displays the throughput and the traffic-bound figures"
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "env-steps/s" in text and "reference" in text
    markdown = [out for out in outputs if "text/markdown" in out.get("data", {})]
    assert len(markdown) == 2 and "| target |" in markdown[0]["data"]["text/markdown"]
    assert "| event | fused steps |" in markdown[1]["data"]["text/markdown"]
    # the displayed figures draw this run's saved measurements (and the committed ones of other devices)
    saved = json.loads((tmp_path / "out" / "throughput_cpu.json").read_text())
    backends = saved["config"]["backends"]  # those of BACKENDS that run on the CPU
    assert "eager" in backends and "triton" not in backends
    assert sorted((r["target"], r["backend"], r["batch"]) for r in saved["results"]) == sorted(
        (t, k, b) for t in ("simulator", "torchrl-env") for k in backends for b in (1, 2)
    )
    kept = pickle.loads(shown.read_bytes())
    throughput, bounds = kept["figures"]
    assert_throughput_figure(throughput, [saved, *kept["docs"][1:]])
    assert_traffic_figure(bounds, kept["traffic"], kept["docs"])
    assert [(row["size"], row["batch"]) for row in kept["traffic"]] == [("20/5", 2)] * len(kept["traffic"])
    # the PNG the harness wrote is this run's figure
    figure = plot_results([saved])
    assert_throughput_figure(figure, [saved])
    assert_png_shows(tmp_path / "out" / "throughput_cpu.png", figure)
