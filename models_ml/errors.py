"""Errors the model code raises for user mistakes: the command line prints them as one line."""

from __future__ import annotations

FIRST_BUILD_HINT = "run `salesmon load` and `salesmon dbt build` first"
FIRST_TRAIN_HINT = "run `salesmon train` first"


class ModelError(RuntimeError):
    """A user-facing problem with training or scoring (missing data, unknown model version, bad range)."""
