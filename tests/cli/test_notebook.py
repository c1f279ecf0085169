"""``shipyard notebook package``: script, requirements and Dockerfile from a notebook; no server needed."""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from typer.testing import CliRunner, Result

from shipyard.cli.app import app


def package(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, ["notebook", "package", *args])
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}\n{result.output}"
    return result


@pytest.fixture
def analysis(tmp_path: Path) -> Path:
    notebook = new_notebook()
    notebook.cells = [
        new_markdown_cell("# Churn analysis\nimport markdown_is_not_code"),
        new_code_cell("rows = 100", metadata={"tags": ["parameters"]}),
        new_code_cell(
            "%matplotlib inline\n!pip install seaborn\nimport numpy as np\nimport os, json\nfrom collections import Counter"
        ),
        new_code_cell("import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\nimport not_installed_here.sub"),
        new_code_cell("def fetch():\n    import httpx\n    return httpx.get"),
        new_code_cell("import orjson\nframe.head?"),  # not Python as a whole: its import lines still count
        new_code_cell("%%bash\nimport in_a_shell_cell"),
    ]
    path = tmp_path / "churn analysis.ipynb"
    nbformat.write(notebook, path)
    return path


def test_package_writes_a_script_requirements_and_a_dockerfile(analysis: Path) -> None:
    result = package(str(analysis), "--python", "3.12")
    folder = analysis.parent / "churn_analysis-package"
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile", "churn_analysis.py", "requirements.txt"]
    for name in ("churn_analysis.py", "requirements.txt", "Dockerfile"):
        assert str(folder / name) in result.stdout.replace("\n", "")
    assert "not_installed_here" in result.stdout

    script = (folder / "churn_analysis.py").read_text()
    ast.parse(script)  # valid Python: magics and shell lines are commented out
    assert "# %% [markdown]\n# # Churn analysis" in script
    assert '# %% tags=["parameters"]\nrows = 100' in script
    assert "# %matplotlib inline" in script

    lines = (folder / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if not line.startswith("#")]
    expected = ["httpx", "numpy", "orjson", "pandas", "scikit-learn"]
    assert pins == [f"{name}=={metadata.version(name)}" for name in expected]
    assert lines[-1].startswith("# Imported but not installed")
    assert lines[-1].endswith(": not_installed_here")

    docker = (folder / "Dockerfile").read_text()
    assert "FROM python:3.12-slim\n" in docker
    assert docker.index("COPY requirements.txt .") < docker.index("RUN pip install --no-cache-dir -r requirements.txt")
    assert "COPY churn_analysis.py .\n" in docker
    assert "USER runner\n" in docker
    assert docker.endswith('CMD ["python", "churn_analysis.py"]\n')


def test_out_chooses_the_folder_and_files_are_rewritten(analysis: Path, tmp_path: Path) -> None:
    out = tmp_path / "build" / "image"
    package(str(analysis), "--out", str(out))
    (out / "Dockerfile").write_text("stale")
    package(str(analysis), "--out", str(out))
    assert (out / "Dockerfile").read_text().startswith("# Runs churn_analysis.py")
    assert not (analysis.parent / "churn_analysis-package").exists()


def test_a_missing_file_or_a_file_that_is_not_a_notebook_exits_1(tmp_path: Path) -> None:
    result = package(str(tmp_path / "missing.ipynb"), code=1)
    assert "no notebook at" in result.stderr
    assert "expected the path of an .ipynb file" in result.stderr
    script = tmp_path / "script.py"
    script.write_text("print('hello')\n")
    result = package(str(script), code=1)
    assert "is not a Jupyter notebook" in result.stderr
    assert "expected an .ipynb file" in result.stderr
    (tmp_path / "binary.ipynb").write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8 text" in package(str(tmp_path / "binary.ipynb"), code=1).stderr
    assert not list(tmp_path.glob("*-package"))


def test_a_python_version_that_is_not_one_is_a_usage_error(analysis: Path) -> None:
    result = package(str(analysis), "--python", "latest", code=2)
    assert "expected a Python version such as 3.11" in result.stderr
