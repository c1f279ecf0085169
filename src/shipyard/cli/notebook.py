"""``shipyard notebook package``: a notebook made ready for a container.

It writes three files: the notebook as a script (jupytext's percent format, which Jupyter
and editors still open cell by cell), ``requirements.txt`` with the third-party packages
its code imports, pinned to the versions installed here, and a ``Dockerfile`` that
installs them and runs the script as a non-root user.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from shipyard.cli.context import fail
from shipyard.cli.output import console
from shipyard.errors import ShipyardError
from shipyard.pipelines.notebook import python_source, read_notebook, require

app = typer.Typer(help="Notebooks: package a notebook to run as a script in a container.", no_args_is_help=True)

_PYTHON_VERSION = re.compile(r"3\.\d{1,2}")
_THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@app.command("package")
def package(
    notebook: Annotated[Path, typer.Argument(help="The .ipynb file.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder to write into; default <name>-package next to the notebook.")
    ] = None,
    python: Annotated[
        str, typer.Option("--python", help="Python version of the image (python:<version>-slim); default this one's.")
    ] = _THIS_PYTHON,
) -> None:
    """Write NOTEBOOK as a script, a requirements.txt and a Dockerfile that runs it."""
    if not _PYTHON_VERSION.fullmatch(python):
        raise typer.BadParameter(f"expected a Python version such as 3.11, got {python!r}", param_hint="--python")
    if not notebook.is_file():
        fail(f"no notebook at {notebook}: expected the path of an .ipynb file")
        return
    try:
        parsed = read_notebook(notebook.read_text(encoding="utf-8"), str(notebook))
        script = require("jupytext").writes(parsed, fmt="py:percent")
    except UnicodeDecodeError:
        fail(f"{notebook} is not a Jupyter notebook (not UTF-8 text): expected an .ipynb file")
        return
    except ShipyardError as exc:
        fail(exc.message)
        return
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", notebook.stem)
    folder = out if out is not None else notebook.parent / f"{stem}-package"
    pins, unknown = requirements(imported_modules(parsed))
    files = {
        f"{stem}.py": script,
        "requirements.txt": _requirements_text(notebook.name, pins, unknown),
        "Dockerfile": dockerfile(f"{stem}.py", notebook.name, python),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write into {folder} ({exc.strerror or exc}): give a writable folder with --out")
        return
    for name in files:
        console.print(f"Wrote [bold]{escape(str(folder / name))}[/bold]", highlight=False)
    if unknown:
        console.print(f"[yellow]Not installed here, so not in requirements.txt: {escape(', '.join(unknown))}[/yellow]")
    tag = re.sub(r"[^a-z0-9_.-]", "-", stem.lower()).strip("._-") or "notebook"
    console.print(f"Build and run it: docker build -t {tag} {escape(str(folder))} && docker run --rm {tag}", highlight=False)


def imported_modules(notebook: Any) -> set[str]:
    """Top-level names of the modules that the code cells import (relative imports left out)."""
    found: set[str] = set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for tree in _trees(python_source(cell.source)):
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found


def _trees(source: str) -> list[ast.Module]:
    try:
        return [ast.parse(source)]
    except SyntaxError:  # e.g. ``frame.head?``: still read the lines that are imports on their own
        trees = []
        for line in source.splitlines():
            if line.strip().startswith(("import ", "from ")):
                try:
                    trees.append(ast.parse(line.strip()))
                except SyntaxError:
                    continue
        return trees


def requirements(modules: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(pins, unknown)``: ``name==version`` of the distributions providing third-party ``modules``, and the rest."""
    owners = metadata.packages_distributions()
    pins: dict[str, str] = {}
    unknown = []
    for module in sorted(modules):
        if module in sys.stdlib_module_names or module == "__future__":
            continue
        if module not in owners:
            unknown.append(module)
        for name in owners.get(module, []):
            try:
                pins.setdefault(name.lower(), f"{name}=={metadata.version(name)}")
            except metadata.PackageNotFoundError:
                pins.setdefault(name.lower(), name)
    return sorted(pins.values(), key=str.lower), unknown


def _requirements_text(notebook: str, pins: list[str], unknown: list[str]) -> str:
    lines = [f"# Third-party packages that {notebook} imports, pinned to the versions it was packaged with.", *pins]
    if unknown:
        lines.append(
            f"# Imported but not installed where it was packaged (local modules or missing packages): {', '.join(unknown)}"
        )
    return "\n".join(lines) + "\n"


def dockerfile(script: str, notebook: str, python: str) -> str:
    return f"""\
# Runs {script}, the script form of {notebook} (written by `shipyard notebook package`).
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Requirements before the script, so the install layer is reused while only the code changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY {script} .
RUN useradd --create-home --uid 10001 runner
USER runner
CMD ["python", "{script}"]
"""
