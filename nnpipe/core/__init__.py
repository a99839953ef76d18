"""NumPy + standard library only: networks, scalers, optimizers, Hopfield, serialization.

Nothing here imports dask, pyarrow, pandas, prefect or mlflow (tests/test_layers.py).
"""
