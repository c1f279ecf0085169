"""Notebook steps: declared from an .ipynb, run by nbclient in worker processes, kept as artifacts."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from shipyard.client import Client
from shipyard.errors import InvalidInput, InvalidPipeline, StepFailed
from shipyard.pipelines import NotebookStep, materializers, notebook_step, pipeline, step
from shipyard.pipelines.launcher import run_pipeline
from shipyard.pipelines.notebook import INJECTED_TAG, python_source

NOTEBOOKS = Path(__file__).parent / "notebooks"
NS = "ml"

# Relative paths are read from this module's folder, whatever the working directory.
report = notebook_step("notebooks/report.ipynb", outputs=["summary"])
fails = notebook_step(NOTEBOOKS / "fails.ipynb", name="check-limit")


@step
def readings(count: int = 5) -> pd.DataFrame:
    return pd.DataFrame({"value": [i / count for i in range(count)]})


@pipeline
def nightly(count: int = 5, threshold: float = 0.5) -> None:
    report(frame=readings(count), threshold=threshold, label="run")


@pipeline
def broken(limit: int = 2) -> None:
    fails(limit=limit)


def write_notebook(path: Path, *sources: str, parameters: str | None = None) -> Path:
    notebook = new_notebook()
    cells = [new_code_cell(parameters, id="params", metadata={"tags": ["parameters"]})] if parameters is not None else []
    notebook.cells = cells + [new_code_cell(source, id=f"cell-{i}") for i, source in enumerate(sources)]
    nbformat.write(notebook, path)
    return path


def tags(cell: Any) -> list[str]:
    return list(cell.metadata.get("tags", []))


@pytest.fixture
def ml(client: Client) -> Client:
    client.create_namespace(NS)
    return client


# -- against a real control plane, with the local executor ----------------------------------


@pytest.mark.slow
def test_a_notebook_step_runs_with_injected_parameters_and_is_kept(ml: Client) -> None:
    result = run_pipeline(nightly, {"count": 4, "threshold": 0.3}, namespace=NS, client=ml)
    assert result.status == "succeeded", result.error
    assert result.output("report", "summary") == {"label": "run", "above": 2, "rows": 4}

    executed = result.output("report", "notebook")
    assert isinstance(executed, nbformat.NotebookNode)
    kinds = [tags(cell) for cell in executed.cells]
    assert kinds[1:3] == [["parameters"], [INJECTED_TAG]], "injected right after the parameters cell"
    injected = executed.cells[2].source
    assert "threshold = 0.3" in injected
    assert "label = 'run'" in injected
    assert "frame = load_input('frame', 'pandas.parquet')" in injected
    printed = executed.cells[3].outputs[0]
    assert printed.text == "run: 2 of 4 rows above 0.3\n"
    assert executed.cells[-1].outputs[0].data["text/plain"] == "{'label': 'run', 'above': 2, 'rows': 4}"
    assert len(executed.cells) == 5, "the cell that reads outputs back is not kept"

    record = next(s for s in ml.list_step_runs(result.run_id, namespace=NS) if s["step"] == "report")
    stored = record["outputs"]["notebook"]
    assert stored["materializer"] == "notebook.ipynb"
    assert stored["description"] == {"cells": 5, "code_cells": 4, "errors": 0}
    assert ml.get_pipeline_run(result.run_id, namespace=NS)["graph"]["nodes"][1]["params"]["threshold"] == 0.3

    again = run_pipeline(nightly, {"count": 4, "threshold": 0.3}, namespace=NS, client=ml, cache=False)
    assert again.steps["report"].outputs["notebook"]["digest"] == stored["digest"], "an equal run gives equal bytes"


@pytest.mark.slow
def test_a_failing_notebook_fails_the_run_with_the_cells_error(ml: Client) -> None:
    result = run_pipeline(broken, {"limit": 2}, namespace=NS, client=ml)
    assert result.status == "failed"
    error = result.error or ""
    assert "step 'check-limit' failed" in error
    assert "notebook 'fails.ipynb' failed in cell 4: ValueError: limit 2 is too low" in error
    logged = [line["message"] for line in ml.read_logs(result.run_id, step="check-limit", namespace=NS)]
    assert any("Traceback" in message and "limit 2 is too low" in message for message in logged)


@pytest.mark.slow
def test_an_edited_notebook_reruns_and_an_unchanged_one_is_cached(ml: Client, tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "square.ipynb", "y = x * x", parameters="x = 2")

    def squares() -> Any:
        squared = notebook_step(path, outputs=["y"])  # declared again, as a fresh import would

        @pipeline
        def run(x: int = 3) -> None:
            squared(x=x)

        return run

    first = run_pipeline(squares(), namespace=NS, client=ml)
    assert first.status == "succeeded", first.error
    assert first.output("square", "y") == 9
    again = run_pipeline(squares(), namespace=NS, client=ml)
    assert again.steps["square"].status == "cached"

    write_notebook(path, "y = x * x + 1", parameters="x = 2")
    edited = run_pipeline(squares(), namespace=NS, client=ml)
    assert edited.steps["square"].status == "succeeded"
    assert edited.output("square", "y") == 10
    keys = {ml.list_step_runs(r.run_id, namespace=NS)[0]["cache_key"] for r in (first, edited)}
    assert len(keys) == 2


# -- in this process --------------------------------------------------------------------------


def test_the_parameters_cell_is_the_signature() -> None:
    assert list(report.signature.parameters) == ["threshold", "frame", "label"]
    assert report.signature.parameters["threshold"].default == 0.5
    assert report.options.outputs == ("notebook", "summary")

    @pipeline
    def typo() -> None:
        report(frame=readings(), treshold=0.9)

    with pytest.raises(InvalidPipeline, match=r"unknown argument 'treshold' for step 'report'.*did you mean 'threshold'"):
        typo.build()


def test_a_notebook_without_parameters_cell_takes_any_argument_at_the_top(tmp_path: Path) -> None:
    loose = notebook_step(write_notebook(tmp_path / "loose.ipynb", "total = a + sum(b)"), outputs=["total"])
    executed, total = loose.fn(a=1, b=[2, 3])
    assert total == 6
    assert tags(executed.cells[0]) == [INJECTED_TAG]
    assert executed.cells[0].source == "# Parameters\na = 1\nb = [2, 3]"


def test_a_declared_output_the_notebook_never_sets_fails_by_name(tmp_path: Path) -> None:
    quiet = notebook_step(write_notebook(tmp_path / "quiet.ipynb", "x = 1"), outputs=["score"])
    with pytest.raises(StepFailed, match="NameError: the notebook defines no variable 'score'"):
        quiet.fn()


def test_a_notebook_step_pickles_by_value() -> None:
    copy = pickle.loads(pickle.dumps(report))  # noqa: S301
    assert isinstance(copy, NotebookStep)
    assert (copy.name, copy.options, copy.code_hash) == (report.name, report.options, report.code_hash)
    assert copy.text == (NOTEBOOKS / "report.ipynb").read_text()


def test_the_code_hash_follows_the_cells_only(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "n.ipynb", "y = 1")
    before = notebook_step(path).code_hash
    executed = nbformat.read(path, as_version=4)
    executed.cells[0].outputs = [nbformat.v4.new_output("stream", text="saved output\n")]
    executed.cells[0].execution_count = 7
    nbformat.write(executed, path)
    assert notebook_step(path).code_hash == before, "saved outputs are not code"
    write_notebook(path, "y = 2")
    assert notebook_step(path).code_hash != before


def test_bad_notebooks_and_options_are_refused_when_declared(tmp_path: Path) -> None:
    with pytest.raises(InvalidPipeline, match=r"cannot read notebook .*missing\.ipynb.*expected an \.ipynb file"):
        notebook_step(tmp_path / "missing.ipynb")
    (tmp_path / "script.ipynb").write_text("print('hi')")
    with pytest.raises(InvalidInput, match=r"is not a Jupyter notebook .*NotJSONError"):
        notebook_step(tmp_path / "script.ipynb")
    with pytest.raises(InvalidPipeline, match="'notebook': it is always the first output"):
        notebook_step(NOTEBOOKS / "fails.ipynb", outputs=["notebook"])
    with pytest.raises(InvalidPipeline, match=r"unknown step option 'retry'.*did you mean 'retries'"):
        notebook_step(NOTEBOOKS / "fails.ipynb", retry=2)


def test_without_the_extra_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nbformat", None)  # makes `import nbformat` raise ImportError
    with pytest.raises(InvalidInput, match=r"pip install 'shipyard\[notebooks\]'"):
        notebook_step(NOTEBOOKS / "fails.ipynb")


def test_executed_notebooks_are_stored_as_stable_ipynb_bytes() -> None:
    notebook = nbformat.read(NOTEBOOKS / "report.ipynb", as_version=4)
    data, name, description = materializers.dump(notebook)
    assert name == "notebook.ipynb"
    assert description == {"cells": 4, "code_cells": 3, "errors": 0}
    loaded = materializers.load(data, name)
    assert loaded == notebook
    assert materializers.dump(loaded)[0] == data
    assert materializers.for_value({"cells": [], "nbformat": 4}).name == "json", "plain dicts stay JSON"


def test_magics_and_shell_lines_are_not_python() -> None:
    source = "%matplotlib inline\n!pip install x\nfiles = !ls\nif True:\n    %time f()\nimport numpy"
    assert python_source(source) == (
        "pass  # matplotlib inline\npass  # pip install x\npass  # ls\nif True:\n    pass  # time f()\nimport numpy"
    )
    assert python_source("%%bash\nls -l") == ""
    assert python_source("%%time\nx = 1") == "\nx = 1"
