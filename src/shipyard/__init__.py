"""Shipyard: an MLOps platform in one Python package.

The public SDK is what this module exports; everything else is internal.
"""

from shipyard._version import __version__
from shipyard.active_run import ActiveRun, start_run
from shipyard.batcher import MetricBatcher
from shipyard.client import Client
from shipyard.errors import (
    AlreadyExists,
    ClientError,
    Conflict,
    ImmutableValue,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ShipyardError,
    Unauthenticated,
    UntrustedModel,
)
from shipyard.registry.fingerprint import dataset_digest
from shipyard.registry.formats import load_model
from shipyard.registry.signature import infer as infer_signature
from shipyard.settings import Settings

__all__ = [
    "ActiveRun",
    "AlreadyExists",
    "Client",
    "ClientError",
    "Conflict",
    "ImmutableValue",
    "IntegrityFailure",
    "InvalidInput",
    "MetricBatcher",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Settings",
    "ShipyardError",
    "Unauthenticated",
    "UntrustedModel",
    "__version__",
    "dataset_digest",
    "infer_signature",
    "load_model",
    "start_run",
]
