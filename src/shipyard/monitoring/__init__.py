"""Monitoring: reference profiles, data and prediction drift, data quality. Pure functions, no I/O.

    profile = Profile.from_frame(training_inputs)      # JSON-ready: profile.to_dict()
    drift = detect_drift(profile, current_inputs)      # per-feature FeatureDrift + summary
    quality = check_quality(profile, current_inputs)   # schema, missing, range, unseen

Modules: ``schema`` (column kinds), ``sketch`` (quantile sketch), ``profile``, ``histograms``
(reference vs current counts), ``measures`` (the statistics), ``methods`` (names, thresholds,
default choice), ``drift``, ``quality``.
"""

from shipyard.monitoring.drift import DriftReport, FeatureDrift, detect_drift, prediction_drift
from shipyard.monitoring.methods import Method
from shipyard.monitoring.profile import CategoricalSummary, ColumnProfile, NumericSummary, Profile
from shipyard.monitoring.quality import QualityCheck, QualityReport, QualityThresholds, check_quality
from shipyard.monitoring.schema import ColumnKind, SchemaDiff, TypeChange, infer_kind

__all__ = [
    "CategoricalSummary",
    "ColumnKind",
    "ColumnProfile",
    "DriftReport",
    "FeatureDrift",
    "Method",
    "NumericSummary",
    "Profile",
    "QualityCheck",
    "QualityReport",
    "QualityThresholds",
    "SchemaDiff",
    "TypeChange",
    "check_quality",
    "detect_drift",
    "infer_kind",
    "prediction_drift",
]
