"""The sweep config: the search space, its draws, the halving rungs, and what is refused."""

from __future__ import annotations

import math

import pytest

from flows.config import ConfigError
from flows.sweep_config import SWEEPABLE, load_sweep_config, parse_sweep_config
from flows.sweep_trials import make_trials


def sweep(**values):
    base = {"train": {"dataset": "/data/reg", "max_epochs": 9}, "space": {"alpha": [0.0, 0.1]}}
    return parse_sweep_config({**base, **values})


def refused(values, *needles):
    with pytest.raises(ConfigError) as info:
        sweep(**values)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_grid_is_every_combination_of_the_lists_in_order():
    config = sweep(space={"alpha": [0.0, 0.1], "hidden_layer_sizes": [[8], [16, 16], [32]]})
    params = config.trial_params()
    assert len(params) == 6
    assert params[0] == {"alpha": 0.0, "hidden_layer_sizes": [8]}
    assert params[-1] == {"alpha": 0.1, "hidden_layer_sizes": [32]}
    assert config.budgets == [9]


def test_random_draws_stay_in_their_ranges_and_repeat_with_the_seed():
    space = {
        "learning_rate_init": {"loguniform": [1e-4, 1e-1]},
        "alpha": {"uniform": [0.0, 0.01]},
        "batch_size": {"integer": [32, 35]},
        "activation": {"choice": ["tanh", "relu"]},
        "hidden_layer_sizes": [[8], [16]],
    }
    config = sweep(strategy="random", n_trials=40, seed=3, space=space)
    params = config.trial_params()
    assert len(params) == 40
    assert params == sweep(strategy="random", n_trials=40, seed=3, space=space).trial_params()
    assert params != sweep(strategy="random", n_trials=40, seed=4, space=space).trial_params()
    lrs = [p["learning_rate_init"] for p in params]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    # Log-uniform: about as many draws per decade, so some below 1e-3.
    assert sum(lr < 1e-3 for lr in lrs) >= 5
    assert {p["batch_size"] for p in params} == {32, 33, 34, 35}
    assert {p["activation"] for p in params} == {"tanh", "relu"}
    assert all(0.0 <= p["alpha"] <= 0.01 for p in params)


def test_halving_rungs_multiply_by_eta_up_to_max_epochs():
    space = {"alpha": [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08]}
    config = sweep(strategy="halving", space=space, halving={"min_epochs": 1, "eta": 3})
    assert config.budgets == [1, 3, 9]
    config = sweep(strategy="halving", space=space, halving={"min_epochs": 2, "eta": 2}, n_trials=8)
    assert config.budgets == [2, 4, 8, 9]


def test_trial_directories_follow_the_sweep_and_the_parameters(tmp_path):
    a = sweep(workdir=str(tmp_path), space={"alpha": [0.0, 0.1]})
    again = sweep(workdir=str(tmp_path), space={"alpha": [0.0, 0.1]})
    other = sweep(workdir=str(tmp_path), space={"alpha": [0.0, 0.2]})
    dirs = [t.directory for t in make_trials(a)]
    assert dirs == [t.directory for t in make_trials(again)]
    assert len(set(dirs)) == 2 and all(d.is_absolute() for d in dirs)
    assert dirs[0].parent == tmp_path / "sweeps" / a.sweep_id
    assert a.sweep_id != other.sweep_id


@pytest.mark.parametrize(
    ("values", "needles"),
    [
        (
            {"space": {"learning_rate": [0.1]}},
            ["space.learning_rate", "allowed: " + ", ".join(SWEEPABLE)],
        ),
        (
            {"space": {"alpha": {"uniform": [0.1, 0.1]}}, "strategy": "random", "n_trials": 2},
            ["space.alpha.uniform", "empty range"],
        ),
        (
            {"space": {"batch_size": {"integer": [64, 32]}}, "strategy": "random", "n_trials": 2},
            ["empty range"],
        ),
        ({"space": {"alpha": []}}, ["space.alpha", "empty"]),
        (
            {
                "space": {"learning_rate_init": {"loguniform": [0, 1]}},
                "strategy": "random",
                "n_trials": 1,
            },
            ["low > 0"],
        ),
        ({"strategy": "random", "n_trials": 0}, ["n_trials", "greater than or equal to 1"]),
        ({"strategy": "random"}, ["n_trials"]),
        (
            {"strategy": "halving", "halving": {"min_epochs": 9}},
            ["halving.min_epochs 9 does not fit", "max_epochs 9"],
        ),
        (
            {"strategy": "halving", "halving": {"min_epochs": 1, "eta": 3}},
            ["2 trials", "need at least 9"],
        ),
        ({"space": {"alpha": {"uniform": [0, 1]}}}, ["strategy grid takes lists"]),
        ({"space": {"activation": ["tanh", "sigmoid"]}}, ["space.activation", "'sigmoid'"]),
        ({"spaces": {}}, ["spaces: unknown key"]),
    ],
)
def test_bad_sweeps_are_refused_in_one_line_naming_the_key(values, needles):
    refused(values, *needles)


def test_flags_override_the_file_and_reach_the_base_config(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "workdir: elsewhere\ntrain: {dataset: /data/reg, workdir: other}\nspace: {alpha: [0.0]}\n"
    )
    config = load_sweep_config(path, workdir=str(tmp_path / "w"), dask_address="tcp://h:1")
    assert config.train.workdir == tmp_path / "w"
    assert config.train.dask_address == "tcp://h:1"
    assert math.isclose(config.trial_config(config.trial_params()[0]).alpha, 0.0)
