"""Spatial and temporal contribution of a model against its TSN baseline (unified-analysis eq. 1).

``Φ = S_TSN / max(S_a, S_TSN)`` (how much of the model's accuracy a purely spatial model already
reaches, in ``[0, 1]``) and ``Ψ = (S_a − S_TSN) / (100 − S_TSN)`` (the share of the TSN baseline's
remaining error that temporal modelling removes; negative when it hurts). Accuracies are taken
in percent; fractions in ``[0, 1]`` are accepted and scaled. Averages over backbones and frame
counts give Table 7's ``Φ̄`` and ``Ψ̄``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path

import torch

DEFAULT_METRIC = "test/acc1_video"


def _percent(value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"an accuracy must be in [0, 1] or [0, 100], got {value}")
    return value * 100.0 if value <= 1.0 else value


def spatial_temporal_contribution(model_acc: float, tsn_acc: float) -> tuple[float, float]:
    """``(Φ, Ψ)`` of a model with accuracy ``model_acc`` over its TSN baseline ``tsn_acc``.

    Both in percent (or both as fractions ≤ 1 — each value ≤ 1 is read as a fraction, so pass
    percentages for accuracies below 1 %).
    """
    s_a, s_tsn = _percent(model_acc), _percent(tsn_acc)
    if s_tsn >= 100.0:
        raise ValueError("the TSN baseline is 100 % accurate: Ψ is undefined")
    phi = s_tsn / max(s_a, s_tsn) if max(s_a, s_tsn) > 0 else 1.0
    psi = (s_a - s_tsn) / (100.0 - s_tsn)
    return phi, psi


def average_contribution(pairs: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """Table 7's ``(Φ̄, Ψ̄)``: the mean of Φ and Ψ over ``(model_acc, tsn_acc)`` pairs (one per
    backbone and frame count; ``Z_Φ = Z_Ψ`` = the number of pairs)."""
    values = [spatial_temporal_contribution(a, b) for a, b in pairs]
    if not values:
        raise ValueError("no (model, TSN) accuracy pairs given")
    return (sum(v[0] for v in values) / len(values), sum(v[1] for v in values) / len(values))


def load_accuracy(path: str | Path, metric: str = DEFAULT_METRIC) -> float:
    """The accuracy (percent) stored in a result file.

    Accepted: the JSON that :class:`~lightning_modules.callbacks.TestPredictionsWriter` writes
    (``{"metrics": {...}}``) or any flat JSON object of metrics; a CSVLogger ``metrics.csv``
    (the last non-empty value of the ``metric`` column); a predictions file (``.pt``/``.npz``,
    accuracy recomputed from its probabilities and labels, ``metric`` ignored).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result file not found: {path}")
    if path.suffix in (".pt", ".npz"):
        from lightning_modules.analysis.predictions import load_predictions

        predictions = load_predictions(path)
        labels = torch.as_tensor(predictions["labels"])
        probs = torch.as_tensor(predictions["probs"][predictions["final"]])
        return float((probs.argmax(-1) == labels).float().mean()) * 100.0
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        metrics = data.get("metrics", data) if isinstance(data, dict) else {}
        if metric not in metrics:
            raise KeyError(f"{path} has no {metric!r}; it has {sorted(metrics)[:20]}")
        return _percent(metrics[metric])
    if path.suffix == ".csv":
        value = None
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if metric not in (reader.fieldnames or []):
                raise KeyError(f"{path} has no column {metric!r}")
            for row in reader:
                if row.get(metric) not in (None, ""):
                    value = row[metric]
        if value is None or math.isnan(float(value)):
            raise ValueError(f"{path}: column {metric!r} has no value")
        return _percent(float(value))
    raise ValueError(f"{path}: result files are .json, .csv, .pt or .npz")


def contribution_from_files(
    model: str | Path, baseline: str | Path, metric: str = DEFAULT_METRIC
) -> dict[str, float]:
    """``{"S_a", "S_TSN", "phi", "psi"}`` from a model's and its TSN baseline's result files."""
    s_a, s_tsn = load_accuracy(model, metric), load_accuracy(baseline, metric)
    phi, psi = spatial_temporal_contribution(s_a, s_tsn)
    return {"S_a": s_a, "S_TSN": s_tsn, "phi": phi, "psi": psi}


__all__ = [
    "average_contribution",
    "contribution_from_files",
    "load_accuracy",
    "spatial_temporal_contribution",
]
