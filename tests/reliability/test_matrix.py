"""The reliability matrix: bad input and unavailable services, each case the real command.

Every case runs ``nnpipe`` (in this process: the same ``main`` the console script
calls) on a damaged copy of a tiny session dataset, a broken config, model file
or service address, and checks the exit code, that stderr ends in one line
naming the problem with no traceback, and that nothing already written changed.
``CASES`` is the list the README's reliability table is made from: add a case
(command, data damage, expected code and message) as a row there.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import copy_of, one_line, run_main


@dataclass
class Case:
    """One row of the matrix: ``args(datasets, tmp)`` -> exit code and a needle in the line."""

    name: str
    args: Callable[[Path, Path], list]
    code: int
    needle: str
    env: dict[str, str] | None = None


def first_file(root: Path) -> Path:
    return sorted(root.glob("*.parquet"))[1]


def set_column(path: Path, name: str, values, type_=None) -> None:
    """Replace column ``name`` (its own type unless ``type_`` is given)."""
    table = pq.read_table(path)
    i = table.schema.get_field_index(name)
    array = pa.array(values, type_ or table.schema.field(i).type)
    pq.write_table(table.set_column(i, name, array), path)


def damaged(change: Callable[[Path], None], name: str = "regression"):
    """A train command on a copy of dataset ``name`` that ``change(copy)`` damaged."""

    def args(datasets: Path, tmp: Path) -> list:
        data = copy_of(datasets, name, tmp)
        change(data)
        return ["train", "--dataset", data, "--workdir", tmp / "w", "--epochs", 1]

    return args


def with_value(column: str, value) -> Callable[[Path], None]:
    def change(data: Path) -> None:
        path = first_file(data)
        values = pq.read_table(path).column(column).to_pylist()
        values[3] = value
        set_column(path, column, values)

    return change


def strings_in(column: str) -> Callable[[Path], None]:
    def change(data: Path) -> None:
        path = first_file(data)
        rows = range(pq.read_metadata(path).num_rows)
        set_column(path, column, [f"v{i}" for i in rows], pa.string())

    return change


def drop_column(column: str) -> Callable[[Path], None]:
    def change(data: Path) -> None:
        path = first_file(data)
        pq.write_table(pq.read_table(path).drop_columns([column]), path)

    return change


def constant(column: str) -> Callable[[Path], None]:
    def change(data: Path) -> None:
        for path in data.glob("*.parquet"):
            set_column(path, column, [1.5] * pq.read_metadata(path).num_rows)

    return change


def float64_column(data: Path) -> None:
    path = first_file(data)
    set_column(path, "x1", pq.read_table(path).column("x1").to_pylist(), pa.float64())


def truncate(data: Path) -> None:
    path = first_file(data)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt(data: Path) -> None:
    first_file(data).write_bytes(b"PAR1" + os.urandom(600) + b"PAR1")


def zero_bytes(data: Path) -> None:
    first_file(data).write_bytes(b"")


def empty(data: Path) -> None:
    for path in data.glob("*.parquet"):
        path.unlink()


def train_on(path_of: Callable[[Path, Path], Path], *extra) -> Callable[[Path, Path], list]:
    return lambda d, t: ["train", "--dataset", path_of(d, t), "--workdir", t / "w", *extra]


def a_file(datasets: Path, tmp: Path) -> Path:
    (tmp / "data.csv").write_text("x0,y\n1,2\n")
    return tmp / "data.csv"


def config_file(text: str) -> Callable[[Path, Path], list]:
    def args(datasets: Path, tmp: Path) -> list:
        (tmp / "bad.yaml").write_text(text)
        return ["train", "--config", tmp / "bad.yaml", "--dataset", datasets / "regression"]

    return args


def model_file(make: Callable[[Path], Path]) -> Callable[[Path, Path], list]:
    def args(datasets: Path, tmp: Path) -> list:
        return ["predict", make(tmp), first_file(datasets / "regression"), tmp / "out.csv"]

    return args


def random_model(tmp: Path) -> Path:
    from nnpipe import MLPRegressor, StandardScaler
    from nnpipe.core.trained_model import TrainedModel

    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40.0)
    net = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    model = TrainedModel(net, StandardScaler().fit(X), ["x0", "x1", "x2"], ["y"])
    path = tmp / "model.npz"
    model.save(path)
    return path


def tampered(tmp: Path) -> Path:
    path = random_model(tmp)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = os.urandom(64)
    path.write_bytes(bytes(raw))
    return path


def truncated_model(tmp: Path) -> Path:
    path = random_model(tmp)
    path.write_bytes(path.read_bytes()[:200])
    return path


def hopfield_model(tmp: Path) -> Path:
    from nnpipe import HopfieldNetwork

    path = tmp / "hopfield.npz"
    HopfieldNetwork().fit(np.array([[1, -1, 1, -1], [1, 1, -1, -1]])).save(path)
    return path


def hopfield(change: Callable[[Path], None]) -> Callable[[Path, Path], list]:
    def args(datasets: Path, tmp: Path) -> list:
        data = copy_of(datasets, "hopfield", tmp)
        change(data)
        return ["recall", "--dataset", data, "--workdir", tmp / "w"]

    return args


def non_bipolar(data: Path) -> None:
    path = data / "patterns" / "part-00000.parquet"
    table = pq.read_table(path)
    rows = table.column("pattern").to_pylist()
    rows[0][0] = 2
    i = table.schema.get_field_index("pattern")
    pq.write_table(table.set_column(i, "pattern", pa.array(rows, table.schema[i].type)), path)


def short_probes(data: Path) -> None:
    path = data / "probes" / "part-00001.parquet"
    table = pq.read_table(path)
    rows = [r[:-1] for r in table.column("probe").to_pylist()]
    i = table.schema.get_field_index("probe")
    shorter = pa.list_(table.schema[i].type.value_type, len(rows[0]))
    pq.write_table(table.set_column(i, "probe", pa.array(rows, shorter)), path)


def service(variable: str, value: str) -> dict[str, str]:
    return {variable: value}


REGRESSION = lambda d, t: ["train", "--dataset", d / "regression", "--workdir", t / "w"]  # noqa: E731

CASES = [
    Case("NaN in a feature", damaged(with_value("x1", float("nan"))), 2, "nan_policy: drop"),
    Case("inf in a feature", damaged(with_value("x0", float("inf"))), 2, "NaN/infinite/null"),
    Case("null in the target", damaged(with_value("y", None)), 2, "column 'y': 1"),
    Case("non-numeric feature", damaged(strings_in("x2")), 2, "x2"),
    Case("non-numeric target", damaged(strings_in("y")), 2, "'y'"),
    Case("schema drift: a file lacks a column", damaged(drop_column("x1")), 2, "x1"),
    Case("type drift: float vs double", damaged(float64_column), 2, "'x1' is float vs double"),
    Case("constant feature", damaged(constant("x0")), 0, "negative"),
    Case("target with one value", damaged(constant("y")), 0, "negative"),
    Case("truncated Parquet file", damaged(truncate), 2, "part-00001.parquet"),
    Case("corrupt Parquet file", damaged(corrupt), 2, "part-00001.parquet"),
    Case("zero-byte Parquet file", damaged(zero_bytes), 2, "part-00001.parquet"),
    Case("empty dataset directory", damaged(empty), 2, "regression"),
    Case("dataset path is a file", train_on(a_file), 2, "data.csv"),
    Case("dataset path missing", train_on(lambda d, t: t / "nowhere"), 2, "nowhere"),
    Case("unknown config key", config_file("hiden_layer_sizes: [3]\n"), 2, "unknown key"),
    Case("bad config value", config_file("learning_rate_init: -1\n"), 2, "learning_rate_init"),
    Case("invalid YAML", config_file("a: [1, 2\n"), 2, "not valid YAML"),
    Case("bad --nan-policy value", lambda d, t: ["train", "--nan-policy", "skip"], 2, "skip"),
    Case("tampered model .npz", model_file(tampered), 2, "model.npz"),
    Case("truncated model .npz", model_file(truncated_model), 2, "model.npz"),
    Case("model file of the wrong kind", model_file(hopfield_model), 2, "hopfield.npz"),
    Case("non-bipolar Hopfield patterns", hopfield(non_bipolar), 2, "-1"),
    Case("probes of the wrong length", hopfield(short_probes), 2, "probe"),
    Case(
        "MLflow server down at start",
        REGRESSION,
        1,
        "http://127.0.0.1:9/",
        service("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/"),
    ),  # fmt: skip
    Case(
        "Prefect API down at start",
        REGRESSION,
        1,
        "http://127.0.0.1:9/api",
        service("PREFECT_API_URL", "http://127.0.0.1:9/api"),
    ),  # fmt: skip
    Case(
        "Dask scheduler down at start",
        lambda d, t: [*REGRESSION(d, t), "--dask-address", "tcp://127.0.0.1:9"],
        1,
        "tcp://127.0.0.1:9",
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_ends_in_one_line_and_keeps_what_was_written(
    case, datasets, tmp_path, in_process, monkeypatch
):
    for key, value in (case.env or {}).items():
        monkeypatch.setenv(key, value)
    code, out, err = run_main(case.args(datasets, tmp_path))
    assert code == case.code, err
    if code == 0:  # a case the command handles: the needle is in its report
        assert case.needle in out, out
        return
    line = one_line(err)
    assert line.startswith("nnpipe ") or "usage:" in err, err
    assert case.needle in line, line
    assert not (tmp_path / "w" / "models").exists()  # nothing half-written


def test_a_service_that_does_not_answer_fails_within_the_timeout(datasets, tmp_path, keep_env):
    """A port that accepts connections but never replies: the check gives up after 2 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        code, _, err = run_main([*REGRESSION(datasets, tmp_path), "--service-timeout", "2"])
    assert code == 1 and uri in one_line(err) and "within 2 s" in err, err


def test_nan_policy_drop_follows_the_advice(datasets, tmp_path, in_process):
    args = damaged(with_value("x1", float("nan")))(datasets, tmp_path)
    code, out, err = run_main([*args, "--nan-policy", "drop", "--json"])
    assert code == 0, err
    assert json.loads(out)["summary"]["epochs"] == 1


def test_debug_shows_the_traceback_of_an_error_found_in_the_flow(datasets, tmp_path, in_process):
    args = damaged(with_value("x1", float("nan")))(datasets, tmp_path)
    code, _, err = run_main(["--debug", *args])
    assert code == 2 and "Traceback" in err and "nan_policy: drop" in err.splitlines()[-1]
