"""Experiment tracking behind a small ``Tracker`` protocol; the only package importing mlflow."""
