"""Typed flow parameters with defaults, loadable from YAML.

Every flow takes one of these models as its ``config`` parameter, so a Prefect
deployment shows them as a form and a YAML file can override any field. Unknown
keys are refused (a typo must not silently fall back to a default). Paths left
unset are derived from ``workdir``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from flows.locations import Location, masked
from nnpipe.data import storage

DEFAULT_WORKDIR = "nnpipe-work"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="after")
    @classmethod
    def _absolute_paths(cls, value: Any) -> Any:
        # Dask workers run in other directories (or on other hosts sharing a volume):
        # every path they are handed must not depend on this process's cwd.
        if isinstance(value, Path):
            return value.expanduser().absolute()
        return value


class RegressionData(_Config):
    """Synthetic regression set: many negative targets, written partition by partition."""

    n_rows: int = Field(20_000, gt=0)
    n_features: int = Field(8, gt=0)
    rows_per_partition: int = Field(2_000, gt=0)
    noise: float = Field(0.1, ge=0)


class HopfieldData(_Config):
    """Synthetic Hopfield set: stored patterns and noisy probes with their ground truth."""

    n_neurons: int = Field(100, gt=1)
    n_patterns: int = Field(6, gt=0)
    n_probes: int = Field(4_000, gt=0)
    flip_fraction: float = Field(0.1, ge=0, le=1)
    rows_per_partition: int = Field(500, gt=0)


class _WorkdirConfig(_Config):
    workdir: Location = Path(DEFAULT_WORKDIR)
    dask_address: str | None = Field(
        None, description="tcp://host:port of a Dask scheduler; None starts a local cluster"
    )
    storage_options: dict[str, Any] | None = Field(
        None,
        description="fsspec options for s3:// (or other URL) paths, e.g. "
        "{client_kwargs: {endpoint_url: ...}, key: ..., secret: ...}; default: the AWS_* "
        "environment variables. Credentials are never logged or printed",
    )

    @field_serializer("storage_options", when_used="json")
    def _hide_credentials(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return masked(value)

    def under(self, value: Path | str | None, default: str) -> Path | str:
        """``value`` when set, else ``workdir / default``."""
        return value if value is not None else storage.join(self.workdir, *default.split("/"))


class DataConfig(_WorkdirConfig):
    """Parameters of the ``prepare_data`` flow."""

    regression_dir: Location | None = None
    hopfield_dir: Location | None = None
    generate: bool = Field(True, description="write the synthetic sets when they are missing")
    overwrite: bool = Field(False, description="rewrite the synthetic sets even when present")
    regression: RegressionData = RegressionData()
    hopfield: HopfieldData = HopfieldData()
    target: str = "y"
    scaler: Literal["standard", "minmax"] = "standard"
    nan_policy: Literal["raise", "drop"] = Field(
        "raise", description="rows with NaN, infinite or null values: raise or drop"
    )
    validation_fraction: float = Field(
        0.2, gt=0, lt=1, description="rows held out of the scaler fit (train_bp's split)"
    )
    split_seed: int = Field(0, ge=0, description="seed of that split (train_bp's random_state)")
    seed: int = Field(0, ge=0, description="seed of the synthetic data")
    experiment: str = "nnpipe-prepare-data"

    @property
    def regression_path(self) -> Path | str:
        return self.under(self.regression_dir, "data/regression")

    @property
    def hopfield_path(self) -> Path | str:
        return self.under(self.hopfield_dir, "data/hopfield")


# The registry name a classifier gets when the config does not name one.
CLASSIFIER_REGISTRY_NAME = "nnpipe-classifier"


class DistributedConfig(_Config):
    """Data-parallel training on Dask workers (nnpipe.training.train_distributed)."""

    workers: int = Field(2, gt=0, description="Dask workers that train the one network together")
    local_steps: int | Literal["auto"] = Field(
        "auto",
        description="minibatches each worker trains between two averagings (H), an integer "
        "> 0, or auto: rounds of about half a second of compute, at least 4 an epoch",
    )
    warmup_epochs: int = Field(
        0, ge=0, description="first epochs averaged after every minibatch (post-local SGD)"
    )
    worker_timeout: float = Field(
        60.0, gt=0, description="seconds to wait for the cluster to have that many workers"
    )

    @field_validator("local_steps", mode="before")
    @classmethod
    def _auto_or_positive(cls, value: Any) -> Any:
        ok = value == "auto" or (isinstance(value, int) and not isinstance(value, bool))
        if not ok or (value != "auto" and value <= 0):
            raise ValueError("expected auto or an integer > 0")
        return value


class TrainConfig(_WorkdirConfig):
    """Parameters of the ``train_bp`` flow (MLPRegressor / MLPClassifier names where they exist)."""

    dataset: Location | None = None
    task: Literal["regression", "classification"] = Field(
        "regression",
        description="regression: an MLPRegressor on numeric targets; classification: an "
        "MLPClassifier on one label column (int, str or bool)",
    )
    target: str = "y"
    features: list[str] | None = None
    scaler: Literal["standard", "minmax"] = "standard"
    hidden_layer_sizes: list[int] = Field(default_factory=lambda: [64, 64])
    activation: Literal["tanh", "relu", "logistic", "identity", "leaky_relu"] = "tanh"
    solver: Literal["adam", "sgd"] = "adam"
    learning_rate_init: float = Field(1e-3, gt=0)
    alpha: float = Field(1e-4, ge=0)
    batch_size: int = Field(256, gt=0)
    max_epochs: int = Field(30, gt=0)
    n_iter_no_change: int = Field(5, gt=0)
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    random_state: int = Field(0, ge=0)
    distributed: DistributedConfig | None = Field(
        None,
        description="train across Dask workers (batch_size per worker); None: in one process",
    )
    nan_policy: Literal["raise", "drop"] = Field(
        "raise",
        description="rows with NaN, infinite or null values: raise (stop with the file and "
        "column) or drop (skip those rows)",
    )
    keep_checkpoints: int = Field(
        2, gt=0, description="last epochs' checkpoints kept (the best epoch's is kept as well)"
    )
    restart: bool = Field(
        False, description="start over instead of resuming from this run's checkpoints"
    )
    experiment: str = "nnpipe-train-bp"
    registered_model_name: str | None = "nnpipe-regressor"

    @model_validator(mode="before")
    @classmethod
    def _classifier_registry_name(cls, values: Any) -> Any:
        # A classifier is not registered as "nnpipe-regressor" unless asked to be.
        if isinstance(values, dict) and values.get("task") == "classification":
            values = dict(values)
            values.setdefault("registered_model_name", CLASSIFIER_REGISTRY_NAME)
        return values

    @property
    def dataset_path(self) -> Path | str:
        return self.under(self.dataset, "data/regression")

    @property
    def model_dir(self) -> Path | str:
        return storage.join(self.workdir, "models")

    def identity(self, dataset_fingerprint: str) -> str:
        """What determines the trained weights: config (less RESULT_NEUTRAL), data, code version.

        Two runs with the same identity train the same network, so the second one may
        continue from the first one's checkpoints.
        """
        from nnpipe import __version__

        values = self.model_dump(mode="json", exclude=RESULT_NEUTRAL)
        values.update(dataset_fingerprint=dataset_fingerprint, nnpipe_version=__version__)
        text = json.dumps(values, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def checkpoint_dir(self, dataset_fingerprint: str) -> Path | str:
        """The checkpoints of the run this config and dataset identify (see :meth:`identity`)."""
        name = f"train_bp-{self.identity(dataset_fingerprint)[:16]}"
        return storage.join(self.workdir, "checkpoints", name)


# Fields that do not change the weights a training run ends with: where things are
# written or run, how they are named and kept, and the dataset's path (its contents
# count, through the fingerprint, so a moved dataset resumes).
RESULT_NEUTRAL = {
    "workdir",
    "dask_address",
    "storage_options",
    "dataset",
    "experiment",
    "registered_model_name",
    "keep_checkpoints",
    "restart",
}


class RecallConfig(_WorkdirConfig):
    """Parameters of the ``recall_hopfield`` flow."""

    dataset: Location | None = None
    output: Location | None = None
    rule: Literal["hebbian", "storkey", "pseudoinverse"] = "hebbian"
    update: Literal["async", "sync"] = "async"
    max_iter: int = Field(50, gt=0)
    random_state: int = Field(0, ge=0)
    experiment: str = "nnpipe-recall-hopfield"
    pattern_shape: tuple[int, int] | None = Field(
        None,
        description="[rows, cols] of image-like patterns (rows * cols = pattern length): "
        "log pictures of stored pattern, probe and recalled state for a sample of probes",
    )

    @field_validator("pattern_shape")
    @classmethod
    def _positive_shape(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError(f"pattern_shape {list(value)} must be two positive integers")
        return value

    @property
    def dataset_path(self) -> Path | str:
        return self.under(self.dataset, "data/hopfield")

    @property
    def output_path(self) -> Path | str:
        return self.under(self.output, f"recall/{self.rule}-{self.update}")


class PipelineConfig(_WorkdirConfig):
    """Parameters of the ``pipeline`` flow: the three stages, sharing workdir and cluster."""

    # MLflow experiment of the pipeline's run and of its three stage runs nested under it.
    experiment: str = "nnpipe-pipeline"
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    recall: RecallConfig = RecallConfig()

    @model_validator(mode="before")
    @classmethod
    def _share_workdir_and_cluster(cls, values: Any) -> Any:
        # A stage inherits the pipeline's workdir / dask_address unless it sets its own.
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for stage in ("data", "train", "recall"):
            sub = values.get(stage)
            if isinstance(sub, BaseModel):
                sub = sub.model_dump(exclude_unset=True)
            sub = dict(sub or {})
            for key in ("workdir", "dask_address", "storage_options"):
                if key in values and key not in sub:
                    sub[key] = values[key]
            values[stage] = sub
        return values

    @model_validator(mode="after")
    def _classifier_needs_its_dataset(self) -> PipelineConfig:
        # The synthetic set prepare_data writes is a regression set: a classifier
        # must be pointed at labelled data.
        if self.train.task == "classification" and self.train.dataset is None:
            raise ValueError(
                "train.task 'classification' needs train.dataset: a Parquet dataset with a "
                "label column (e.g. written by `nnpipe make-data classification DIR`, "
                "target 'label')"
            )
        return self

    def stage_paths(self) -> dict[str, Path | str]:
        """The data directories each stage reads, checked for agreement by the pipeline."""
        return {
            "regression": self.data.regression_path,
            "train.dataset": self.train.dataset_path,
            "hopfield": self.data.hopfield_path,
            "recall.dataset": self.recall.dataset_path,
        }


CONFIGS: dict[str, type[_Config]] = {
    "prepare_data": DataConfig,
    "train_bp": TrainConfig,
    "recall_hopfield": RecallConfig,
    "pipeline": PipelineConfig,
}


# The section of a pipeline-shaped file each single flow takes.
SECTIONS = {"prepare_data": "data", "train_bp": "train", "recall_hopfield": "recall"}


class ConfigError(ValueError):
    """A config file is missing, not YAML, or has wrong keys or values."""


def load_config(path: str | Path | None, kind: str = "pipeline", **overrides: Any):
    """Read the config model of flow ``kind`` from YAML ``path`` (None: defaults) + overrides."""
    model = CONFIGS.get(kind)
    if model is None:
        raise ConfigError(f"unknown config kind {kind!r}; allowed: {', '.join(CONFIGS)}")
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {str(path)!r} must hold a mapping of parameters, "
                f"got {type(loaded).__name__}"
            )
        values = loaded or {}
    source = str(path) if path else "parameters"
    if kind in SECTIONS and any(key in values for key in SECTIONS.values()):
        return _pipeline_section(values, kind, source, overrides)
    _merge(values, overrides)
    return parse_config(values, kind, source=source)


def _merge(values: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}  # a section override keeps the file's keys
        elif value is not None:
            values[key] = value


def _pipeline_section(values: dict[str, Any], kind: str, source: str, overrides: dict):
    """Flow ``kind``'s config from a pipeline-shaped file, as the pipeline would run it.

    The whole file is checked; the overrides (command-line flags) go into the
    section; the stages are made to agree (split, scaler, data paths) as in the
    ``pipeline`` flow, so ``nnpipe prepare`` fits the scalers ``nnpipe train`` reuses.
    """
    from flows.pipeline import stage_configs  # flows.pipeline imports this module

    section = SECTIONS[kind]
    values = {**values, **{name: dict(values.get(name) or {}) for name in SECTIONS.values()}}
    shared = ("workdir", "dask_address", "storage_options")
    for key in shared:  # a flag wins over the file's top level and every section
        if overrides.get(key) is not None:
            values[key] = overrides[key]
            for name in SECTIONS.values():
                values[name].pop(key, None)
    _merge(values[section], {k: v for k, v in overrides.items() if k not in shared})
    data, train, recall = stage_configs(parse_config(values, "pipeline", source))
    return {"data": data, "train": train, "recall": recall}[section]


def parse_config(values: dict[str, Any], kind: str, source: str = "parameters"):
    """Validate ``values`` as the config of flow ``kind``; errors name every bad key."""
    return validate_config(CONFIGS[kind], values, kind, source)


def validate_config(
    model: type[BaseModel], values: dict[str, Any], kind: str, source: str, bare: bool = False
) -> Any:
    """``model`` from ``values``, or one ConfigError naming every bad key and what is allowed.

    ``bare``: a validator's own message (a ``ValueError`` it raised) is shown as it is.
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                allowed = _allowed_keys(model, err["loc"][:-1])
                problems.append(f"{where}: unknown key; allowed: {', '.join(allowed)}")
            elif err["type"] == "value_error" and bare:
                problems.append(str(err["ctx"]["error"]))
            else:
                problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"invalid {kind} config in {source}: " + "; ".join(problems)) from None


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def dump_config(config: BaseModel) -> str:
    """The config as YAML (every field, defaults included), for ``--print-config``."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
