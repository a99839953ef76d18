"""What a training run needs to continue: its progress, saved beside the model's weights.

A checkpoint directory holds ``epoch-NNNN.npz`` files of finished epochs (the
model's own ``save``: weights, optimizer and RNG state) and ``training_state.json``
naming the latest one with the progress made. With ``keep_last`` only the last
that many epochs' files and the best epoch's are kept; older ones are removed
once the state naming a newer one is on disk. Batches depend only on
(random_state, epoch), so loading both and training on gives the same weights,
bit for bit, as a run that never stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnpipe.core.serialization import atomic_write

STATE_FILE = "training_state.json"


@dataclass
class TrainingState:
    """Progress of a training run: everything but the model, which is saved on its own."""

    random_state: int = 0
    dataset_fingerprint: str | None = None  # None: the data cannot be identified
    epochs_done: int = 0
    stopped: bool = False  # early stopping ended the run
    history: list[dict[str, Any]] = field(default_factory=list)  # one metrics dict per epoch
    checkpoint: str | None = None  # file name of the latest weights in the checkpoint dir
    keep_last: int | None = None  # epochs' files kept besides the best one; None: all
    best_checkpoint: str | None = None  # file name of the lowest-loss epoch's weights

    def save(self, directory: str | Path, model: Any) -> Path:
        """Write the model as the epoch's ``.npz``, then the state naming it; return the .npz."""
        directory = Path(directory)
        name = f"epoch-{self.epochs_done:04d}.npz"
        model.save(directory / name)
        self.checkpoint = name
        self.best_checkpoint = self._best_name()
        # The state file is replaced only once the weights it names are on disk, so a
        # run killed at any point resumes from a complete epoch.
        payload = {
            "epochs_done": self.epochs_done,
            "checkpoint": name,
            "stopped": self.stopped,
            "random_state": self.random_state,
            "dataset_fingerprint": self.dataset_fingerprint,
            "history": self.history,
            "best_checkpoint": self.best_checkpoint,
        }
        text = json.dumps(payload, indent=1).encode("utf-8")
        atomic_write(directory / STATE_FILE, lambda fh: fh.write(text))
        self._prune(directory)
        return directory / name

    def _best_name(self) -> str | None:
        """The checkpoint of the epoch with the lowest validation (else training) loss."""
        losses = [
            (m["val_loss"] if m.get("val_loss") is not None else m["train_loss"], i + 1)
            for i, m in enumerate(self.history)
        ]
        return f"epoch-{min(losses)[1]:04d}.npz" if losses else None

    def _prune(self, directory: Path) -> None:
        """Remove epoch files other than the last ``keep_last`` and the best one."""
        if self.keep_last is None:
            return
        files = sorted(directory.glob("epoch-[0-9][0-9][0-9][0-9].npz"))
        keep = {p.name for p in files[-self.keep_last :]} | {self.checkpoint, self.best_checkpoint}
        for path in files:
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def load(self, directory: str | Path, model_type: type) -> Any:
        """Read the state saved in ``directory`` into self; return the model, None if none saved.

        Refuses a state saved with another ``random_state`` or on another dataset
        (by fingerprint), since continuing it would not give the run asked for.
        """
        directory = Path(directory)
        path = directory / STATE_FILE
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text())
            checkpoint, epochs_done = str(saved["checkpoint"]), int(saved["epochs_done"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"training state {str(path)!r} is unreadable: {exc}") from exc
        self._check_same_run(directory, saved)
        model = model_type.load(directory / checkpoint)
        self.epochs_done, self.checkpoint = epochs_done, checkpoint
        self.stopped = bool(saved.get("stopped", False))
        self.history = list(saved.get("history", []))
        self.best_checkpoint = saved.get("best_checkpoint")
        return model

    def _check_same_run(self, directory: Path, saved: dict[str, Any]) -> None:
        if saved.get("random_state") != self.random_state:
            raise ValueError(
                f"checkpoint in {str(directory)!r} was trained with random_state="
                f"{saved.get('random_state')!r}, not {self.random_state!r}; use the same seed "
                "to resume, or another checkpoint_dir to start over"
            )
        theirs, ours = saved.get("dataset_fingerprint"), self.dataset_fingerprint
        if ours is not None and theirs not in (None, ours):
            raise ValueError(
                f"checkpoint in {str(directory)!r} was trained on another dataset "
                f"(fingerprint {str(theirs)[:12]}..., this one {ours[:12]}...); "
                "use another checkpoint_dir to start over"
            )


def saved_epochs(directory: str | Path) -> int:
    """Epochs done by the training saved in ``directory``; 0 when nothing readable is there."""
    try:
        return int(json.loads((Path(directory) / STATE_FILE).read_text())["epochs_done"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
