"""Prefect flows composing nnpipe.data, nnpipe.core and nnpipe.tracking.

- ``flows.prepare_data.prepare_data``: synthetic datasets (when missing) and
  out-of-core scalers;
- ``flows.train_bp.train_bp``: the BP network trained out of core, tracked in MLflow;
- ``flows.recall_hopfield.recall_hopfield``: probe partitions recalled on Dask workers;
- ``flows.pipeline.pipeline``: the three in order, on one Dask cluster;
- ``flows.sweep_bp.sweep_bp``: trials of a search space on the Dask workers, one
  MLflow child run each under a parent run.

Each takes one typed ``config`` parameter (``flows.config``; loadable from YAML)
and returns ``{"run_ids": {...}, "summary": {...}}``. ``flows.schedules`` serves
them as deployments with cron schedules (``nnpipe serve``).
"""
