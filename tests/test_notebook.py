"""notebooks/throughput.ipynb runs headless at a tiny size and draws its figure."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "throughput.ipynb"


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
    notebook.cells.insert(index + 1, overrides)
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
    assert (tmp_path / "out" / "throughput_cpu.json").exists()
    assert (tmp_path / "out" / "throughput_cpu.png").stat().st_size > 10_000
