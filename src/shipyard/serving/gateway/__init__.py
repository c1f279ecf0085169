"""The serving gateway: the data plane that answers prediction requests.

Each uvicorn worker runs one Starlette app (``app.create``) with its own copy of the
routing table. A background thread (``state``) polls the control plane's desired state,
loads and warms new model versions, then swaps the table by replacing one reference.
Requests are authorised against the endpoint's audience (``audience``), routed by weight,
sticky header or shadow (``router``), parsed by one of the wire protocols (``protocols``)
and checked against the model's signature (``validation``) before they reach a model.
"""
