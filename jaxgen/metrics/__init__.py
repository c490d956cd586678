"""Evaluation metrics as pure functions of arrays."""
