"""NumPy + standard library only: the networks and what they are built from.

- ``mlp/``: MLPRegressor, MLPClassifier and their activations, losses, optimizers,
  initializers and model files;
- ``hopfield/``: HopfieldNetwork (rules, dynamics, states and energy, capacity) and
  ModernHopfield;
- ``perceptron``, ``neuron``: the single-layer perceptron and the single sigmoid neuron;
- ``scalers``: StandardScaler, MinMaxScaler;
- ``params`` (scikit-learn's get_params/set_params), ``validation``, ``serialization``
  (``.npz`` without pickle), ``threads`` (BLAS threads), ``metrics``,
  ``sklearn_compat`` (scikit-learn's tags and error/warning classes without importing
  it).

Nothing here imports dask, pyarrow, pandas, prefect or mlflow (tests/test_layers.py).
"""
