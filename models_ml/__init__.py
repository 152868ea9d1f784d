"""The forecasting model: features read from the warehouse, training, the model registry, batch scoring.

Submodules are imported where used (scikit-learn and pandas are slow to import): `features` (column
roles, COPY reads of the features mart), `pipelines` (the candidate scikit-learn Pipelines),
`metrics` (RMSLE, MAE, RMSE), `train`, `registry` (ml.model_registry, `load_model`), `score`
(batch predictions into ml.predictions) and `errors` (the user-facing `ModelError`).
"""
