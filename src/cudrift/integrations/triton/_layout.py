"""Which reference columns arrive in which Triton tensor.

The repository writer and the monitor model derive the same layout from the
reference profile, so a repository written by one cudrift version is read
the same way by the model:

- ``NUMERIC`` (``TYPE_FP32``, ``[batch, n]``): the numerical features, in
  reference order;
- ``CATEGORICAL`` (``TYPE_STRING``, ``[batch, n]``): categorical features whose
  reference categories are strings;
- ``CATEGORICAL_INT`` (``TYPE_INT64``, ``[batch, n]``): categorical features
  whose reference categories are integers or booleans;
- one tensor per *prediction column*: a reference column fed by an output of
  the served model (prediction drift), named after that column, one value per
  row, with the data type of the output.

A group with no column has no tensor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cudrift.errors import SchemaError
from cudrift.sketches.column import CategoricalColumnProfile
from cudrift.sketches.config import CATEGORICAL, NUMERICAL
from cudrift.sketches.profile import Profile

__all__ = ["InputGroup", "FeatureLayout", "NUMERIC", "CATEGORICAL_STR", "CATEGORICAL_INT", "OUTPUT_NAME"]

NUMERIC = "NUMERIC"
CATEGORICAL_STR = "CATEGORICAL"
CATEGORICAL_INT = "CATEGORICAL_INT"
#: The monitor's one output: the drift share of the last closed window, per row.
OUTPUT_NAME = "DRIFT_SHARE"

_NUMERIC_TYPES = frozenset(
    {"TYPE_FP16", "TYPE_FP32", "TYPE_FP64", "TYPE_INT8", "TYPE_INT16", "TYPE_INT32", "TYPE_INT64",
     "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64"}
)
_INTEGER_TYPES = frozenset(
    {"TYPE_INT8", "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32",
     "TYPE_UINT64", "TYPE_BOOL"}
)
# Tensor names become config keys, HTTP JSON keys and ensemble map keys; keep
# them to characters every client and the ensemble scheduler accept.
_TENSOR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def int64_unsafe_columns(reference: Profile, layout: "FeatureLayout") -> list[str]:
    """Categorical columns of ``layout``'s INT64 inputs (``CATEGORICAL_INT``, INT64 predictions) with reference keys
    past 2**63 (uint64): an INT64 tensor carries such a key as a negative number, which is an unseen category."""
    return [c for g in layout.groups if g.kind == CATEGORICAL and g.data_type == "TYPE_INT64" for c in g.columns
            if any(isinstance(k, int) and not isinstance(k, bool) and k >= 2**63
                   for k in reference.columns[c].counts)]


def key_type(col: CategoricalColumnProfile) -> str:
    """``"str"``, ``"int"`` or ``"bool"``: the type of a categorical column's reference keys.

    A column without any category (all nulls in the reference) is read as
    strings.
    """
    for k in col.counts:
        if isinstance(k, bool):
            return "bool"
        if isinstance(k, int):
            return "int"
        return "str"
    return "str"


@dataclass(frozen=True)
class InputGroup:
    """One input tensor of the monitor.

    Attributes
    ----------
    name
        Tensor name.
    data_type
        Triton config data type (``"TYPE_FP32"``, ``"TYPE_STRING"``...).
    columns
        Reference columns carried by the tensor's second axis, in order.
    kind
        ``"numerical"`` or ``"categorical"``.
    key_type
        For categorical groups, the reference key type (``"str"``, ``"int"``
        or ``"bool"``); ``None`` for numerical ones.
    prediction
        True for a prediction column fed by a served model's output.
    """

    name: str
    data_type: str
    columns: tuple[str, ...]
    kind: str
    key_type: str | None = None
    prediction: bool = False

    @property
    def client_data_type(self) -> str:
        """The data type as clients name it (``"FP32"``, ``"BYTES"``, ``"INT64"``...)."""
        t = self.data_type.removeprefix("TYPE_")
        return "BYTES" if t == "STRING" else t


@dataclass(frozen=True)
class FeatureLayout:
    """The monitor's input tensors for one reference profile.

    Examples
    --------
    >>> import numpy as np, cudrift
    >>> ref = cudrift.profile({"a": np.arange(50.0), "city": np.array(["x", "y"] * 25, dtype=object),
    ...                        "b": np.arange(50.0), "score": np.linspace(0, 1, 50)})
    >>> lay = FeatureLayout.from_profile(ref, predictions={"score": "TYPE_FP32"})
    >>> [(g.name, g.data_type, g.columns) for g in lay.groups]
    [('NUMERIC', 'TYPE_FP32', ('a', 'b')), ('CATEGORICAL', 'TYPE_STRING', ('city',)), ('score', 'TYPE_FP32', ('score',))]
    """

    groups: tuple[InputGroup, ...]

    @classmethod
    def from_profile(cls, reference: Profile, predictions: Mapping[str, str] | None = None) -> "FeatureLayout":
        """Derive the layout from a reference profile.

        Parameters
        ----------
        reference
            The reference profile; its column order is the feature order.
        predictions
            Reference column → Triton data type of the served-model output that
            feeds it. Those columns get their own tensor instead of a group.

        Raises
        ------
        SchemaError
            If a prediction column is not in the reference, its name cannot
            be a tensor name, or its data type does not fit the column's kind.
        """
        predictions = dict(predictions or {})
        unknown = [c for c in predictions if c not in reference.kinds]
        if unknown:
            raise SchemaError(f"prediction columns {unknown} are not in the reference profile {reference.names}")
        numeric: list[str] = []
        cat_str: list[str] = []
        cat_int: list[str] = []
        preds: list[InputGroup] = []
        for name, kind in reference.kinds.items():
            kt = key_type(reference.columns[name]) if kind == CATEGORICAL else None
            if name in predictions:
                preds.append(_prediction_group(name, kind, kt, predictions[name]))
            elif kind == NUMERICAL:
                numeric.append(name)
            elif kt == "str":
                cat_str.append(name)
            else:
                cat_int.append(name)
        groups: list[InputGroup] = []
        if numeric:
            groups.append(InputGroup(NUMERIC, "TYPE_FP32", tuple(numeric), NUMERICAL))
        if cat_str:
            groups.append(InputGroup(CATEGORICAL_STR, "TYPE_STRING", tuple(cat_str), CATEGORICAL, "str"))
        if cat_int:
            kinds = {key_type(reference.columns[c]) for c in cat_int}
            groups.append(InputGroup(CATEGORICAL_INT, "TYPE_INT64", tuple(cat_int), CATEGORICAL,
                                     "bool" if kinds == {"bool"} else "int"))
        clash = [g.name for g in preds if g.name in {NUMERIC, CATEGORICAL_STR, CATEGORICAL_INT, OUTPUT_NAME}]
        if clash:
            raise SchemaError(f"prediction columns {clash} clash with the monitor's own tensor names; rename them")
        return cls(tuple(groups + preds))

    def group(self, name: str) -> InputGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no input {name!r}; the monitor's inputs are {[g.name for g in self.groups]}")

    @property
    def columns(self) -> list[str]:
        return [c for g in self.groups for c in g.columns]

    def key_types(self, reference: Profile) -> dict[str, str]:
        """Categorical column → reference key type (a mixed INT64 group holds int and bool columns)."""
        return {c: key_type(reference.columns[c]) for g in self.groups if g.kind == CATEGORICAL for c in g.columns}


def _prediction_group(name: str, kind: str, kt: str | None, data_type: str) -> InputGroup:
    if not _TENSOR_NAME.match(name):
        raise SchemaError(
            f"prediction column {name!r} cannot be a Triton tensor name (letters, digits, '_', '.', '-')"
        )
    if kind == NUMERICAL:
        ok = data_type in _NUMERIC_TYPES
    elif kt == "str":
        ok = data_type == "TYPE_STRING"
    else:
        ok = data_type in _INTEGER_TYPES
    if not ok:
        want = "a numeric type" if kind == NUMERICAL else ("TYPE_STRING" if kt == "str" else "an integer type")
        raise SchemaError(
            f"prediction column {name!r} is {kind}"
            + (f" with {kt} categories" if kt else "")
            + f" in the reference, but the served output has data type {data_type} (expected {want})"
        )
    return InputGroup(name, data_type, (name,), kind, kt, prediction=True)
