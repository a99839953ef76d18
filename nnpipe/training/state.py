"""What a training run needs to continue: its progress, saved beside the model's weights.

A checkpoint directory holds ``epoch-NNNN.npz`` files of finished epochs (the
model's own ``save``: weights, optimizer and RNG state) and ``training_state.json``
naming the latest one with the progress made. The directory may be a URL
(``s3://bucket/prefix``): every file is then one object, sent whole. With
``keep_last`` only the last that many epochs' files and the best epoch's are
kept; older ones are removed once the state naming a newer one is on disk. Batches depend only on
(random_state, epoch), so loading both and training on gives the same weights,
bit for bit, as a run that never stopped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnpipe.data import storage

STATE_FILE = "training_state.json"
_EPOCH = re.compile(r"epoch-[0-9]{4}\.npz")


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

    def save(self, directory: str | Path, model: Any, storage_options: dict | None = None):
        """Write the model as the epoch's ``.npz``, then the state naming it; return the .npz."""
        name = f"epoch-{self.epochs_done:04d}.npz"
        storage.save_file(model.save, storage.join(directory, name), storage_options)
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
        storage.write_bytes(storage.join(directory, STATE_FILE), text, storage_options)
        self._prune(directory, storage_options)
        return storage.join(directory, name)

    def _best_name(self) -> str | None:
        """The checkpoint of the epoch with the lowest validation (else training) loss."""
        losses = [
            (m["val_loss"] if m.get("val_loss") is not None else m["train_loss"], i + 1)
            for i, m in enumerate(self.history)
        ]
        return f"epoch-{min(losses)[1]:04d}.npz" if losses else None

    def _prune(self, directory: str | Path, storage_options: dict | None = None) -> None:
        """Remove epoch files other than the last ``keep_last`` and the best one."""
        if self.keep_last is None:
            return
        files = [n for n in storage.list_names(directory, storage_options) if _EPOCH.fullmatch(n)]
        keep = {*files[-self.keep_last :], self.checkpoint, self.best_checkpoint}
        for name in files:
            if name not in keep:
                storage.remove(storage.join(directory, name), storage_options)

    def load(
        self, directory: str | Path, model_type: type, storage_options: dict | None = None
    ) -> Any:
        """Read the state saved in ``directory`` into self; return the model, None if none saved.

        Refuses a state saved with another ``random_state`` or on another dataset
        (by fingerprint), since continuing it would not give the run asked for.
        """
        path = storage.join(directory, STATE_FILE)
        try:
            text = storage.read_bytes(path, storage_options)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        try:
            saved = json.loads(text)
            checkpoint, epochs_done = str(saved["checkpoint"]), int(saved["epochs_done"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"training state {str(path)!r} is unreadable: {exc}") from exc
        self._check_same_run(directory, saved)
        weights = storage.join(directory, checkpoint)
        model = storage.load_file(model_type.load, weights, storage_options)
        self.epochs_done, self.checkpoint = epochs_done, checkpoint
        self.stopped = bool(saved.get("stopped", False))
        self.history = list(saved.get("history", []))
        self.best_checkpoint = saved.get("best_checkpoint")
        return model

    def _check_same_run(self, directory: str | Path, saved: dict[str, Any]) -> None:
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


def saved_epochs(directory: str | Path, storage_options: dict | None = None) -> int:
    """Epochs done by the training saved in ``directory``; 0 when nothing readable is there."""
    path = storage.join(directory, STATE_FILE)
    try:
        return int(json.loads(storage.read_bytes(path, storage_options))["epochs_done"])
    except storage.StorageError:
        raise  # the store refuses or does not answer: not "no checkpoint"
    except (OSError, ValueError, KeyError, TypeError):
        return 0
