"""A run folder (``pasr eval`` RUN_DIR, ``pasr train`` / ``pasr sft`` OUTPUT_DIR): its checks and its one writer.

Two commands appending to the same folder would each run every example or step and double
the results, so a folder has one writer at a time: :class:`RunLock` holds an exclusive
``filelock.FileLock`` on ``<folder>/.pasr.lock`` for the whole command and refuses a second
writer at once with a message naming the holder (pid, host, command, start time, read from
``<folder>/.pasr.lock.json``); a folder also keeps one kind of run: ``.pasr-run.json`` names the command
that made it and another command is refused. The lock is the kernel's ``flock`` (filelock falls back to a
soft lock on file systems without it), so a process killed with ``kill -9`` releases it
with its death: a stale lock never blocks (deleting the lock file by hand while it is held defeats
it, as with any ``flock``). In a distributed job (``distributed=True``) only global rank 0 takes
it; the other ranks write nothing of their own into the folder.

:func:`check_output_folder` is the check every command makes on its output option before
any work starts: the path must be a folder (or not exist yet) that this user can write.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from pasr.errors import PasrError

LOCK_FILE = ".pasr.lock"
HOLDER_FILE = ".pasr.lock.json"
KIND_FILE = ".pasr-run.json"  # which command writes this folder (one kind of run per folder)


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest parent that exists (the current folder when none does)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_output_folder(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a Path, or a PasrError naming ``option`` when it cannot be a writable run folder.

    Refused: an existing path that is not a folder, a folder (or the nearest existing parent of a
    new one) that this user cannot write, and a parent that is a file. Nothing is created here.
    """
    if not str(path).strip():
        raise PasrError(f"{option} is empty; give a folder path")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise PasrError(f"{option} {path}: exists and is not a folder; give a folder path (new or from an earlier run)")
    base = nearest_existing(path)
    if not base.is_dir():
        raise PasrError(f"{option} {path}: {base} is a file, so no folder can be made there; choose another path")
    if not os.access(base, os.W_OK | os.X_OK):
        what = "is not writable" if base == path else f"cannot be created: {base} is not writable"
        raise PasrError(f"{option} {path}: {what} by this user; choose another path")
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling renamed over it: a kill never leaves it cut short."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def is_writing_process() -> bool:
    """True unless this is a non-zero rank of a distributed launch (torchrun / accelerate set ``RANK``)."""
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


class RunLock:
    """Hold ``folder`` as its only writer: ``with RunLock(folder, "pasr eval"): ...``.

    ``acquire`` creates the folder, takes the lock without waiting and records the holder;
    a second writer gets a :class:`~pasr.errors.PasrError` naming the first. ``release`` (or
    leaving the ``with`` block, also on an exception) removes the holder record and frees
    the lock. With ``distributed=True`` (train, sft, star under torchrun / accelerate) a no-op on
    the non-writing ranks (:func:`is_writing_process`); ``pasr eval`` is one process and always locks.
    """

    def __init__(
        self, folder: str | os.PathLike, command: str, *, option: str = "the run folder", distributed: bool = False
    ):
        self.folder = Path(folder)
        self.command = command
        self.option = option
        self.distributed = distributed  # a launcher's ranks share the folder: only rank 0 locks
        self._lock: Any = None

    def acquire(self) -> "RunLock":
        from filelock import FileLock, Timeout

        if self._lock is not None or (self.distributed and not is_writing_process()):
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.folder / LOCK_FILE), timeout=0)
            lock.acquire()
        except Timeout:
            raise PasrError(
                f"{self.option} {self.folder} is in use by {self._holder()}; wait for it to finish "
                "(or stop it), or choose another folder"
            ) from None
        except OSError as err:
            raise PasrError(f"{self.option} {self.folder}: cannot lock it ({err.strerror or err})") from None
        self._lock = lock
        try:
            self._claim_kind()
        except BaseException:
            self.release()
            raise
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "argv": sys.argv,
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            (self.folder / HOLDER_FILE).write_text(json.dumps(holder) + "\n", encoding="utf-8")
        except OSError:
            pass  # the lock holds without the record; a refused writer then says less about us
        return self

    def check(self) -> None:
        """Refuse now, creating nothing, what :meth:`acquire` would refuse: a folder of another kind of run,
        or one a live process holds. Lets a command check its folder before slow work (loading a model)."""
        from filelock import FileLock, Timeout

        self._refuse_other_kind()
        if self.distributed and not is_writing_process():
            return
        path = self.folder / LOCK_FILE
        if not path.is_file():
            return  # nobody has locked this folder yet
        probe = FileLock(str(path), timeout=0)
        try:
            probe.acquire()
        except Timeout:
            raise PasrError(
                f"{self.option} {self.folder} is in use by {self._holder()}; wait for it to finish "
                "(or stop it), or choose another folder"
            ) from None
        except OSError:
            return  # acquire() will say what is wrong
        probe.release()

    def _refuse_other_kind(self) -> bool:
        """Refuse a folder another kind of command wrote (e.g. ``pasr sft`` into a ``pasr train`` folder,
        whose checkpoints it would resume from). True when the folder has no kind mark yet."""
        try:
            other = json.loads((self.folder / KIND_FILE).read_text(encoding="utf-8")).get("command")
        except FileNotFoundError:
            return True
        except (OSError, ValueError, AttributeError):
            other = None  # unreadable mark: the folder's files tell the commands what they need
        if other and other != self.command:
            raise PasrError(
                f"{self.option} {self.folder} holds a `{other}` run; `{self.command}` needs its own folder: "
                "choose another"
            )
        return False

    def _claim_kind(self) -> None:
        """:meth:`_refuse_other_kind`, then mark a new folder with this command."""
        if self._refuse_other_kind():
            write_text_atomic(self.folder / KIND_FILE, json.dumps({"command": self.command}) + "\n")

    def _holder(self) -> str:
        try:
            info = json.loads((self.folder / HOLDER_FILE).read_text(encoding="utf-8"))
            return f"another {info['command']} (pid {info['pid']} on {info['host']}, since {info['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another pasr process"

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            (self.folder / HOLDER_FILE).unlink(missing_ok=True)
        except OSError:
            pass
        self._lock.release()
        self._lock = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = ["RunLock", "check_output_folder", "is_writing_process", "write_text_atomic"]
