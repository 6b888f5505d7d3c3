"""Mergeable sketches and per-column profiles.

Every sketch is a monoid with the same vocabulary: ``empty(...)``,
``update(values)`` (in place, returns ``self``), ``merge(other)`` / ``+``
(a new sketch), ``copy()``, ``to_bytes()`` / ``from_bytes()``.
"""

from cudrift.sketches.categorical import CategoryCounts
from cudrift.sketches.column import CategoricalColumnProfile, NumericColumnProfile
from cudrift.sketches.histogram import Histogram, equal_mass_edges, uniform_edges
from cudrift.sketches.moments import Moments
from cudrift.sketches.quantiles import QuantileSketch, worst_case_rank_error
from cudrift.sketches.sample import Sample

__all__ = [
    "CategoryCounts",
    "CategoricalColumnProfile",
    "NumericColumnProfile",
    "Histogram",
    "equal_mass_edges",
    "uniform_edges",
    "Moments",
    "QuantileSketch",
    "worst_case_rank_error",
    "Sample",
]
