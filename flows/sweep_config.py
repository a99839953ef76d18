"""Parameters of the ``sweep_bp`` flow: a base training config and a search space.

A YAML file holds the ``train:`` section (any ``train_bp`` key: the base every
trial starts from) and the ``space:`` of swept parameters. A list is a grid of
values; a mapping with one key draws from a range::

    space:
      hidden_layer_sizes: [[16], [64, 64]]     # grid list
      learning_rate_init: {loguniform: [1.0e-4, 1.0e-1]}
      alpha: {uniform: [0.0, 0.01]}
      batch_size: {integer: [32, 256]}         # both ends included
      activation: {choice: [tanh, relu]}

``strategy: grid`` trains every combination of the lists; ``random`` draws
``n_trials`` configurations (a list is drawn from like a choice) with ``seed``;
``halving`` starts from those draws (or, without ``n_trials``, from the grid) and
lets the best 1/eta of each rung continue to the next epoch budget.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError, model_validator

from flows.config import (
    DEFAULT_WORKDIR,
    ConfigError,
    TrainConfig,
    _Config,
    _WorkdirConfig,
    validate_config,
)

# TrainConfig fields a sweep may vary: the network and its training, not the data.
SWEEPABLE = (
    "activation",
    "alpha",
    "batch_size",
    "hidden_layer_sizes",
    "learning_rate_init",
    "n_iter_no_change",
    "random_state",
    "solver",
)
DISTRIBUTIONS = ("uniform", "loguniform", "integer", "choice")
# Fields that do not change what a trial computes: left out of its identity.
_NOT_IDENTITY = {"workdir", "dask_address", "experiment", "registered_model_name", "max_epochs"}


class Halving(_Config):
    """Successive halving: rung budgets min_epochs, min_epochs*eta, ... up to max_epochs."""

    min_epochs: int = Field(1, gt=0, description="epochs every trial trains first")
    eta: int = Field(3, ge=2, description="1/eta of a rung's trials continue to the next")


class SweepConfig(_WorkdirConfig):
    """Parameters of the ``sweep_bp`` flow."""

    train: TrainConfig = TrainConfig()
    space: dict[str, Any] = Field(default_factory=dict)
    strategy: Literal["grid", "random", "halving"] = "grid"
    n_trials: int | None = Field(None, ge=1, description="random draws (random, halving)")
    seed: int = Field(0, ge=0, description="seed of the random draws")
    halving: Halving = Halving()
    experiment: str = "nnpipe-sweep-bp"
    name: str | None = Field(None, description="sweep directory name; default: a hash")

    @model_validator(mode="before")
    @classmethod
    def _share_workdir_and_cluster(cls, values: Any) -> Any:
        # As in the pipeline: the base config inherits workdir / dask_address.
        if not isinstance(values, dict):
            return values
        values = dict(values)
        # Explicit, so it is made absolute: trials run on workers in other directories.
        values.setdefault("workdir", DEFAULT_WORKDIR)
        train = values.get("train")
        train = dict(
            train.model_dump(exclude_unset=True) if hasattr(train, "model_dump") else train or {}
        )
        for key in ("workdir", "dask_address"):
            if key in values and key not in train:
                train[key] = values[key]
        values["train"] = train
        return values

    @model_validator(mode="after")
    def _check_space(self) -> SweepConfig:
        if not self.space:
            raise ValueError(
                "space: no parameter to sweep; give at least one of " + ", ".join(SWEEPABLE)
            )
        for name, spec in self.space.items():
            check_param(self.train, name, spec)
        grid_only = all(isinstance(spec, list) for spec in self.space.values())
        if self.strategy == "grid" and not grid_only:
            ranged = [n for n, s in self.space.items() if not isinstance(s, list)]
            raise ValueError(
                f"space.{ranged[0]}: strategy grid takes lists of values only; "
                "use strategy random or halving for ranges"
            )
        if self.strategy == "random" and self.n_trials is None:
            raise ValueError("n_trials: strategy random needs n_trials (>= 1)")
        if self.strategy == "halving":
            if self.n_trials is None and not grid_only:
                raise ValueError("n_trials: strategy halving over ranges needs n_trials (>= 1)")
            check_halving(self)
        return self

    @property
    def budgets(self) -> list[int]:
        """Epoch budget of each rung (one rung of max_epochs unless halving)."""
        final = self.train.max_epochs
        if self.strategy != "halving":
            return [final]
        budgets, budget = [], self.halving.min_epochs
        while budget < final:
            budgets.append(budget)
            budget *= self.halving.eta
        return [*budgets, final]

    def trial_params(self) -> list[dict[str, Any]]:
        """The swept values of every trial, in a fixed order (the seed fixes the draws)."""
        if self.strategy == "grid" or (self.strategy == "halving" and self.n_trials is None):
            names = list(self.space)
            return [
                dict(zip(names, combo, strict=True))
                for combo in itertools.product(*self.space.values())
            ]
        rng = np.random.default_rng(self.seed)
        return [
            {name: draw(spec, rng) for name, spec in self.space.items()}
            for _ in range(self.n_trials or 0)
        ]

    def trial_config(self, params: dict[str, Any]) -> TrainConfig:
        """The base config with one trial's values."""
        return self.train.model_copy(update=params)

    @property
    def sweep_id(self) -> str:
        """What identifies this sweep: its name, else a hash of what it computes."""
        if self.name:
            return self.name
        identity = {
            "train": identity_of(self.train),
            "max_epochs": self.train.max_epochs,
            **self.model_dump(mode="json", include={"space", "strategy", "n_trials", "seed"}),
        }
        if self.strategy == "halving":
            identity["halving"] = self.halving.model_dump()
        return f"{self.strategy}-{digest(identity)}"

    @property
    def sweep_dir(self) -> Path:
        return self.workdir / "sweeps" / self.sweep_id


def identity_of(config: TrainConfig) -> dict[str, Any]:
    """The fields of a training config that decide what it computes (paths as strings)."""
    return config.model_dump(mode="json", exclude=_NOT_IDENTITY)


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def check_param(base: TrainConfig, name: str, spec: Any) -> None:
    """Refuse an unknown parameter, an empty range or a value the training config refuses."""
    if name not in SWEEPABLE:
        raise ValueError(
            f"space.{name}: not a parameter a sweep can vary; allowed: {', '.join(SWEEPABLE)}"
        )
    if isinstance(spec, list):
        values = spec
    elif isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in DISTRIBUTIONS:
        kind, bounds = next(iter(spec.items()))
        values = _check_distribution(name, kind, bounds)
    else:
        raise ValueError(
            f"space.{name}: give a list of values or one of {{{', '.join(DISTRIBUTIONS)}: ...}}, "
            f"got {spec!r}"
        )
    if not values:
        raise ValueError(f"space.{name}: empty list of values")
    for value in values:
        try:
            type(base).model_validate({**base.model_dump(), name: value})
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise ValueError(f"space.{name}: value {value!r} is refused: {message}") from None


def _check_distribution(name: str, kind: str, bounds: Any) -> list[Any]:
    """The values to check of a range or choice (its ends, or its options)."""
    where = f"space.{name}.{kind}"
    if kind == "choice":
        if not isinstance(bounds, list):
            raise ValueError(f"{where}: needs a list of options, got {bounds!r}")
        return bounds
    if not (isinstance(bounds, list) and len(bounds) == 2):
        raise ValueError(f"{where}: needs [low, high], got {bounds!r}")
    low, high = bounds
    numbers = all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
    if not numbers or (kind == "integer" and not all(isinstance(b, int) for b in bounds)):
        raise ValueError(
            f"{where}: bounds must be {'integers' if kind == 'integer' else 'numbers'}, "
            f"got {bounds!r}"
        )
    if (kind == "integer" and low > high) or (kind != "integer" and not low < high):
        raise ValueError(f"{where}: empty range [{low}, {high}] (low must be below high)")
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"{where}: a log-uniform range needs low > 0, got {low}")
    return [low, high]


def draw(spec: Any, rng: np.random.Generator) -> Any:
    """One random value of a spec (a list is drawn from like a choice)."""
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]
    kind, bounds = next(iter(spec.items()))
    if kind == "choice":
        return bounds[int(rng.integers(len(bounds)))]
    if kind == "integer":
        return int(rng.integers(bounds[0], bounds[1] + 1))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))
    return float(rng.uniform(bounds[0], bounds[1]))


def check_halving(config: SweepConfig) -> None:
    """Refuse rung budgets that do not fit in max_epochs, or rungs no trial reaches."""
    h, final = config.halving, config.train.max_epochs
    if h.min_epochs >= final:
        raise ValueError(
            f"halving.min_epochs {h.min_epochs} does not fit: it must be below train.max_epochs "
            f"{final} (rungs min_epochs, min_epochs*eta, ... up to max_epochs)"
        )
    n = len(config.trial_params())
    rungs = len(config.budgets)
    if n // h.eta ** (rungs - 1) < 1:
        raise ValueError(
            f"halving: {n} trials with eta {h.eta} leave none for the last of the {rungs} rungs "
            f"{config.budgets}; need at least {h.eta ** (rungs - 1)} trials, or a larger min_epochs"
        )


def load_sweep_config(path: str | Path | None, **overrides: Any) -> SweepConfig:
    """Read a sweep config from YAML ``path`` (None: defaults), then the overrides."""
    values: dict[str, Any] = {}
    source = str(path) if path is not None else "parameters"
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file {source!r} does not exist")
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {source!r} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {source!r} must hold a mapping, got {type(loaded).__name__}"
            )
        values = loaded or {}
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
            if key in ("workdir", "dask_address") and isinstance(values.get("train"), dict):
                values["train"].pop(key, None)  # a flag wins over the file's sections too
    return parse_sweep_config(values, source)


def parse_sweep_config(values: dict[str, Any], source: str = "parameters") -> SweepConfig:
    """Validate ``values`` as a sweep config; the error names every bad key on one line."""
    return validate_config(SweepConfig, values, "sweep_bp", source, bare=True)
