"""A model version's lineage drawn as a tree: version -> run (code, params, metrics) -> datasets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from shipyard.cli.output import when


def lineage_tree(lineage: Mapping[str, Any]) -> Tree:
    """Render the answer of ``Client.lineage`` for people."""
    model = lineage["model"]
    aliases = ", ".join(lineage.get("aliases") or []) or "none"
    root = Tree(
        f"[bold]{escape(model['name'])}[/bold] v{model['version']}  [dim]{escape(model['uri'])}[/dim]  aliases: {aliases}"
    )
    artifact = lineage["artifact"]
    root.add(f"artifact: {artifact['format']}, {artifact['size']} bytes, sha256 {artifact['digest'][:16]}…")
    signature = _signature_line(lineage.get("signature") or {})
    if signature:
        root.add(f"signature: {signature}")
    _add_mapping(root, "version metrics", lineage.get("metrics") or {})
    run = lineage.get("run")
    if run is None:
        root.add("[yellow]run: none recorded[/yellow]")
        parent = root
    elif run.get("missing"):
        root.add(f"[yellow]run {run['id']}: no longer visible[/yellow]")
        parent = root
    else:
        parent = _add_run(root, run, lineage.get("parent_runs") or [])
    _add_datasets(parent, lineage.get("datasets") or [])
    pipeline_run = lineage.get("pipeline_run")
    if pipeline_run:
        root.add(
            f"pipeline run [bold]{escape(str(pipeline_run['id']))}[/bold] of {escape(str(pipeline_run.get('pipeline') or ''))}"
            f" ({pipeline_run.get('status')}), step {escape(str(pipeline_run.get('step') or ''))}"
            f"  [dim]shipyard pipeline show {escape(str(pipeline_run['id']))}[/dim]"
        )
    return root


def _add_run(root: Tree, run: Mapping[str, Any], parents: list[dict[str, Any]]) -> Tree:
    experiment = run.get("experiment", {}).get("name", "")
    node = root.add(
        f"run [bold]{run['id']}[/bold] {escape(run.get('name') or '')} ({run['status']}) in experiment {escape(experiment)}"
    )
    node.add(f"code version: {escape(run.get('code_version') or 'not recorded')}")
    node.add(f"started {when(run.get('start_time'))} by {escape(run.get('created_by') or '')}")
    _add_mapping(node, "params", run.get("params") or {})
    _add_mapping(node, "metrics", run.get("metrics") or {})
    for ancestor in parents:
        node.add(f"parent run {ancestor['id']} {escape(ancestor.get('name') or '')} ({ancestor.get('status', '')})")
    return node


def _add_datasets(parent: Tree, datasets: list[dict[str, Any]]) -> None:
    if not datasets:
        parent.add("[yellow]datasets: none recorded[/yellow]")
        return
    branch = parent.add("datasets")
    for dataset in datasets:
        shape = ""
        if "rows" in dataset:
            shape = f", {dataset['rows']} rows" + (f" x {dataset['columns']} columns" if "columns" in dataset else "")
        branch.add(f"{escape(dataset.get('name') or 'unnamed')}: sha256 {str(dataset.get('digest', ''))[:16]}…{shape}")


def _add_mapping(parent: Tree, label: str, values: Mapping[str, Any]) -> None:
    if not values:
        return
    branch = parent.add(label)
    for key in sorted(values):
        value = values[key]
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        branch.add(f"{escape(key)} = {escape(shown)}")


def _signature_line(signature: Mapping[str, Any]) -> str:
    parts = []
    for side in ("inputs", "outputs"):
        spec = signature.get(side)
        if not spec:
            continue
        if spec.get("type") == "columns":
            parts.append(f"{side} {len(spec.get('columns', []))} columns")
        else:
            parts.append(f"{side} {spec.get('dtype', '?')}{spec.get('shape', [])}")
    return ", ".join(parts)
