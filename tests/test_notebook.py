"""notebooks/quickstart.ipynb runs top to bottom against the seed sample trace, so it
never rots: executed with nbclient on the venv's python3 kernel."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def executed() -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the notebook reads ../sample_traces/seed_unlock_from_worker.csv unless told otherwise
    env = {k: v for k, v in os.environ.items() if k != "TRACEANALYZER_SAMPLE"}
    client = NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=env)
    return nb


def _outputs(nb, mime: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if mime in o.get("data", {})]


def test_notebook_runs_without_errors(executed) -> None:
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert errors == []


def test_notebook_shows_findings_and_figures(executed) -> None:
    html = " ".join(o["data"]["text/html"] for o in _outputs(executed, "text/html"))
    assert "UNLOCK_WHILE_USER_MAPPED" in html
    assert "<strong>Trace</strong>" in html and "<strong>Analysis</strong>" in html
    assert "first_event" in html and "0xffffc30a4b2f1000" in html  # the SQL query's result
    assert "processes" in html and "mydriver.sys+0x1b6b" in html  # the problems table
    assert "Interactive timeline" in html and "Bokeh" in html  # the interactive timeline
    text_plain = " ".join(str(o["data"].get("text/plain", "")) for o in _outputs(executed, "text/plain"))
    assert "<AnalysisView app.exe; 4000000..10000000 ns: 2 findings" in text_plain  # a view
    # leak timeline, hazard timeline, impact, zoomed hazard timeline
    assert len(_outputs(executed, "image/png")) == 4
    text = " ".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                    for o in c.outputs if o.output_type == "stream")
    assert "What to do:" in text and "consequence:" in text
