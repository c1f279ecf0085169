"""Pipelines: steps declared with ``@step`` (or ``notebook_step``), joined by ``@pipeline`` into a checked graph.

The core (options, DSL, graph) is pure Python with no I/O, so a pipeline can be built and
validated anywhere; runners and executors decide where its steps run.
"""

from shipyard.pipelines.dsl import Pipeline, Step, pipeline, step
from shipyard.pipelines.graph import Graph, Node, Output
from shipyard.pipelines.notebook import NotebookStep, notebook_step
from shipyard.pipelines.options import Resources, StepOptions

__all__ = [
    "Graph",
    "Node",
    "NotebookStep",
    "Output",
    "Pipeline",
    "Resources",
    "Step",
    "StepOptions",
    "notebook_step",
    "pipeline",
    "step",
]
