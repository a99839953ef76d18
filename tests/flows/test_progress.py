"""Progress: plain log lines off a terminal, a tqdm bar on one, nothing without a reporter."""

from __future__ import annotations

import io

from flows import progress
from flows.progress import Reporter, use_reporter


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    with use_reporter(Reporter(stream)):
        progress.start("train_bp", 2, unit="epoch")
        progress.advance("train_bp", {"loss": 0.123456, "val_loss": None})
        progress.advance("train_bp", {"loss": 0.1})
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[nnpipe] train_bp: started (2 epochs)",
        "[nnpipe] train_bp: 1/2 loss=0.1235",
        "[nnpipe] train_bp: 2/2 loss=0.1",
    ]


def test_one_step_is_singular_and_an_unknown_total_is_not_printed():
    stream = io.StringIO()
    with use_reporter(Reporter(stream)):
        progress.start("recall_hopfield", 1, unit="partition")
        progress.start("prepare_data", None, unit="step")
    assert stream.getvalue().splitlines() == [
        "[nnpipe] recall_hopfield: started (1 partition)",
        "[nnpipe] prepare_data: started",
    ]


def test_a_bar_on_a_terminal():
    stream = FakeTerminal()
    with use_reporter(Reporter(stream)):
        progress.start("recall_hopfield", 4, unit="partition")
        for _ in range(4):
            progress.advance("recall_hopfield", {"partition": "part-0.parquet"})
    text = stream.getvalue()
    assert "recall_hopfield: 100%" in text and "4/4" in text
    assert "[nnpipe]" not in text


def test_no_reporter_reports_nothing(capsys):
    assert progress.current() is None
    progress.start("x", 1)
    progress.advance("x")
    assert capsys.readouterr() == ("", "")
