"""Evaluation metrics as pure functions of arrays."""

from jaxgen.metrics.mode_coverage import mode_coverage

__all__ = ["mode_coverage"]
