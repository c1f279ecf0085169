"""Notebook steps: a parameterised Jupyter notebook as one step of a pipeline.

Use ``notebook_step`` when the work already lives in a notebook (an analysis, a report)
and its executed copy, outputs and all, is worth keeping next to the run::

    report = notebook_step("report.ipynb", outputs=["summary"], timeout_s=600)

    @pipeline
    def nightly(rows: int = 1000) -> None:
        report(frame=load(rows), threshold=0.8)

It follows papermill's conventions and runs on nbclient with the ``python3`` kernel of the
worker's own interpreter:

- Parameters: the cell tagged ``parameters`` declares them (plain assignments, whose
  values are the defaults); a step argument it does not declare is refused when the
  pipeline is built. A notebook without such a cell takes any argument. Arguments are
  written into a new cell tagged ``injected-parameters`` just after that cell (at the top
  when there is none): JSON values as literals, anything else (an upstream DataFrame) as
  a call that loads its materialized bytes.
- Outputs: ``notebook`` is always the executed notebook (materializer ``notebook.ipynb``);
  each name given in ``outputs`` is a variable the notebook must define, read back after
  its last cell and stored like any step output.
- The kernel's working folder is the notebook's own; the step's ``timeout_s`` limits each cell.
- A relative path is read from the folder of the module that calls ``notebook_step``.
  The notebook is read then, as a function's code is when its module is imported: its
  cells are the step's code identity (so editing the notebook changes the cache key), and
  they travel with the step to worker processes and Ray hosts.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, InvalidPipeline, StepFailed
from shipyard.pipelines import materializers
from shipyard.pipelines.dsl import Step
from shipyard.pipelines.graph import json_problem
from shipyard.pipelines.options import StepOptions

EXCHANGE_VARIABLE = "SHIPYARD_NOTEBOOK_EXCHANGE"  # the folder where inputs and outputs meet the kernel
NOTEBOOK_OUTPUT = "notebook"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
_CAPTURE_TAG = "shipyard-capture-outputs"
_MAX_LITERAL = 2000  # longer JSON values travel as files, so the injected cell stays readable
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})  # their body is Python
_MAGIC = re.compile(r"^(\s*)(?:[%!]|[\w.]+\s*=\s*[%!])")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
log = logging.getLogger("shipyard.pipelines.notebook")


class _Keep:
    """The default of a parameter whose value in the notebook is not a JSON literal: left as the notebook sets it."""

    def __repr__(self) -> str:
        return "<as in the notebook>"


_KEEP = _Keep()


def notebook_step(path: str | os.PathLike[str], /, *, outputs: Sequence[str] = (), **options: Any) -> NotebookStep:
    """A step that executes the notebook at ``path``; see the module docstring.

    ``outputs`` names variables of the notebook to keep as outputs, after ``notebook``.
    Other options are ``@step``'s (name, resources, retries, retry_backoff_s, timeout_s, cache).
    """
    if isinstance(outputs, str):
        outputs = (outputs,)
    if NOTEBOOK_OUTPUT in outputs:
        raise InvalidPipeline(f"notebook step outputs {list(outputs)!r} name {NOTEBOOK_OUTPUT!r}: it is always the first output")
    if "materializer" in options:
        raise InvalidPipeline("notebook steps take no 'materializer' option: each output's materializer follows its type")
    caller = sys._getframe(1).f_globals
    module_file = Path(str(caller.get("__file__") or "<none>"))
    file = (module_file.parent if module_file.is_file() else Path.cwd()) / path  # an absolute path stays as it is
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidPipeline(f"cannot read notebook {str(file)!r} ({exc.strerror or exc}): expected an .ipynb file") from None
    parsed = StepOptions.parse(_default_name(str(file)), outputs=(NOTEBOOK_OUTPUT, *outputs), **options)
    return NotebookStep(str(file), text, parsed, module=str(caller.get("__name__", "__main__")))


class NotebookStep(Step):
    """A ``Step`` whose code is a notebook; it pickles by value, since no module attribute names it."""

    def __init__(self, path: str, text: str, options: StepOptions, *, module: str = __name__) -> None:
        self.path = path
        self.text = text
        self.notebook = read_notebook(text, path)
        super().__init__(_function(self, _default_name(path), module, _parameters(self.notebook, path)), options)

    def __repr__(self) -> str:
        return f"<NotebookStep {self.name!r} of {self.path}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.path, self.text, self.options, self.fn.__module__))

    @functools.cached_property
    def code_hash(self) -> str:
        """sha256 of each cell's type, source and tags: what runs and what the executed notebook shows."""
        cells = [[cell.cell_type, cell.source, sorted(cell.metadata.get("tags", []))] for cell in self.notebook.cells]
        return hashlib.sha256(json.dumps({"notebook": cells}, sort_keys=True).encode()).hexdigest()

    def execute(self, values: Mapping[str, Any]) -> Any:
        """Run the notebook with ``values`` injected (in the worker); the executed notebook, then each declared variable."""
        nbclient = require("nbclient")
        if importlib.util.find_spec("ipykernel") is None:  # the kernel imports it, so only look for it here
            require("ipykernel")
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        variables = self.options.outputs[1:]
        notebook = read_notebook(self.text, self.path)  # a fresh copy: nbclient fills it in place
        exchange = Path(tempfile.mkdtemp(prefix="shipyard-notebook-"))
        try:
            _inject(notebook, values, exchange)
            if variables:
                notebook.cells.append(_cell(f"from {__name__} import save_outputs\nsave_outputs(globals(), {list(variables)!r})"))
                notebook.cells[-1].metadata["tags"] = [_CAPTURE_TAG]
            folder = Path(self.path).parent
            client = nbclient.NotebookClient(
                notebook,
                kernel_name="python3",
                timeout=None if self.options.timeout_s is None else math.ceil(self.options.timeout_s),
                record_timing=False,  # no timestamps, so equal runs give equal bytes
                resources={"metadata": {"path": str(folder if folder.is_dir() else Path.cwd())}},
            )
            try:
                client.execute(env={**os.environ, EXCHANGE_VARIABLE: str(exchange)})
            except CellExecutionError as exc:
                raise self._failed(notebook, exc) from None
            except (CellTimeoutError, DeadKernelError) as exc:
                raise StepFailed(f"notebook {Path(self.path).name!r} did not finish: {exc}", step=self.name) from None
            notebook.cells = [cell for cell in notebook.cells if _CAPTURE_TAG not in cell.metadata.get("tags", [])]
            log.info("executed notebook %s (%d cells)", Path(self.path).name, len(notebook.cells))
            found = _read_outputs(exchange, variables)
        finally:
            shutil.rmtree(exchange, ignore_errors=True)
        return (notebook, *found) if variables else notebook

    def _failed(self, notebook: Any, exc: Any) -> StepFailed:
        number, traceback = 0, ""
        for index, cell in enumerate(notebook.cells, start=1):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    number, traceback = index, _ANSI.sub("", "\n".join(output.get("traceback", [])))
        if traceback:
            log.error("notebook %s failed in cell %d:\n%s", Path(self.path).name, number, traceback)
        where = f" in cell {number}" if number else ""
        return StepFailed(f"notebook {Path(self.path).name!r} failed{where}: {exc.ename}: {exc.evalue}", step=self.name)


def _default_name(path: str) -> str:
    """The file's stem as a step name: letters, digits, '_', '-' and '.', starting with a letter or '_'."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem)
    return name if re.match(r"[A-Za-z_]", name) else f"nb_{name}"


def _restore(path: str, text: str, options: StepOptions, module: str) -> NotebookStep:
    return NotebookStep(path, text, options, module=module)


def _function(step: NotebookStep, name: str, module: str, parameters: dict[str, Any] | None) -> Any:
    """The plain function ``Step`` wraps: its signature is the notebook's parameters."""

    def run(**values: Any) -> Any:
        return step.execute(values)

    run.__name__ = run.__qualname__ = name
    run.__module__ = module
    if parameters is not None:
        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=value) for key, value in parameters.items()]
        )
    return run


def _parameters(notebook: Any, where: str) -> dict[str, Any] | None:
    """Names assigned in the ``parameters`` cell with their JSON-literal defaults; None without such a cell."""
    cell = next((c for c in notebook.cells if PARAMETERS_TAG in c.metadata.get("tags", [])), None)
    if cell is None:
        return None
    try:
        tree = ast.parse(python_source(cell.source))
    except SyntaxError as exc:
        raise InvalidPipeline(f"the parameters cell of {where} is not valid Python ({exc.msg}, line {exc.lineno})") from None
    found: dict[str, Any] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, expression = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, expression = statement.target, statement.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            value = ast.literal_eval(expression)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = _KEEP
        found[target.id] = value if json_problem(value) is None else _KEEP
    return found


def _inject(notebook: Any, values: Mapping[str, Any], exchange: Path) -> None:
    lines = ["# Parameters"]
    loads = []
    for key in sorted(values):
        value = values[key]
        literal = repr(value) if json_problem(value) is None else None
        if literal is not None and len(literal) <= _MAX_LITERAL:
            lines.append(f"{key} = {literal}")
            continue
        data, materializer, _ = materializers.dump(value)
        (exchange / f"input-{key}").write_bytes(data)
        loads.append(f"{key} = load_input({key!r}, {materializer!r})")
    if loads:
        lines += ["", "# Inputs from upstream steps", f"from {__name__} import load_input", *loads]
    notebook.cells = [cell for cell in notebook.cells if INJECTED_TAG not in cell.metadata.get("tags", [])]
    cell = _cell("\n".join(lines))
    cell.metadata["tags"] = [INJECTED_TAG]
    tagged = [i for i, c in enumerate(notebook.cells) if PARAMETERS_TAG in c.metadata.get("tags", [])]
    notebook.cells.insert(tagged[0] + 1 if tagged else 0, cell)


def load_input(name: str, materializer: str) -> Any:
    """Called by the injected cell, in the kernel: an input the step wrote to the exchange folder."""
    return materializers.load((Path(os.environ[EXCHANGE_VARIABLE]) / f"input-{name}").read_bytes(), materializer)


def save_outputs(namespace: Mapping[str, Any], names: Sequence[str]) -> None:
    """Called after the last cell, in the kernel: the declared variables, materialized into the exchange folder."""
    exchange = Path(os.environ[EXCHANGE_VARIABLE])
    index = {}
    for name in names:
        if name not in namespace:
            raise NameError(f"the notebook defines no variable {name!r}, which the step declares in outputs: assign it in a cell")
        data, index[name], _ = materializers.dump(namespace[name])
        (exchange / f"output-{name}").write_bytes(data)
    (exchange / "outputs.json").write_text(json.dumps(index))


def _read_outputs(exchange: Path, names: Sequence[str]) -> list[Any]:
    if not names:
        return []
    index = json.loads((exchange / "outputs.json").read_text())
    return [materializers.load((exchange / f"output-{name}").read_bytes(), index[name]) for name in names]


def _cell(source: str) -> Any:
    nbformat = require("nbformat")
    cell = nbformat.v4.new_code_cell(source)
    cell.id = f"shipyard-{hashlib.sha256(source.encode()).hexdigest()[:12]}"  # not random, so the bytes are stable
    return cell


def read_notebook(text: str, where: str) -> Any:
    """An nbformat v4 NotebookNode from ``text``; cells without ids get stable ones (nbformat 4.5 wants them)."""
    nbformat = require("nbformat")
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook, relax_add_props=True)
    except Exception as exc:  # nbformat raises JSON, schema and attribute errors alike
        detail = (str(exc).splitlines() or [""])[0][:200]
        raise InvalidInput(
            f"{where} is not a Jupyter notebook ({type(exc).__name__}: {detail}): expected an .ipynb file"
        ) from None
    if notebook.nbformat_minor < 5:
        notebook.nbformat_minor = 5
        for index, cell in enumerate(notebook.cells):
            cell.setdefault("id", f"cell-{index}")
    return notebook


def python_source(source: str) -> str:
    """A cell's source as plain Python: magic and shell lines become ``pass``, other-language cells become empty."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split(maxsplit=1)
        if not magic or magic[0] not in _PYTHON_CELL_MAGICS:
            return ""
        lines[0] = ""
    return "\n".join(_MAGIC.sub(r"\1pass  # ", line) if _MAGIC.match(line) else line for line in lines)


def require(module: str) -> Any:
    """The module of the ``notebooks`` extra named ``module``, or an error that says how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise InvalidInput(f"notebooks need {module}, which is not installed: pip install 'shipyard[notebooks]'") from None


class NotebookIpynb(materializers.Materializer):
    """An nbformat notebook as ``.ipynb`` JSON (sorted keys), so it opens in Jupyter as stored."""

    name = "notebook.ipynb"
    media_type = "application/x-ipynb+json"

    def handles(self, value: Any) -> bool:
        nbformat = sys.modules.get("nbformat")  # not imported means it cannot be a NotebookNode
        return nbformat is not None and isinstance(value, nbformat.NotebookNode) and "cells" in value and "nbformat" in value

    def dump(self, value: Any) -> bytes:
        text: str = require("nbformat").writes(value, version=4)
        return text.encode()

    def load(self, data: bytes) -> Any:
        return read_notebook(data.decode(), "the notebook.ipynb artifact")

    def describe(self, value: Any) -> dict[str, Any]:
        code = [cell for cell in value.cells if cell.cell_type == "code"]
        errors = sum(1 for cell in code for output in cell.get("outputs", []) if output.get("output_type") == "error")
        return {"cells": len(value.cells), "code_cells": len(code), "errors": errors}


# Registered when the pipelines package is imported, so any process that loads a step's
# output (the runner, a worker, a later session) can read notebooks back by name.
materializers.register(NotebookIpynb)
