"""Training on several processes with ``torchrun``: one process leads, the others train beside it.

``torchrun --nproc-per-node N -m sparsefit train ...`` starts N copies of the command. Rank 0 is the
*leader*: it alone reads the inputs, evaluates, indexes the catalog, mines negatives and writes the run
folder, the index and the model. Every rank trains: before each round the leader sends the round's
rows and options to the others (one broadcast), the Hugging Face trainer then runs PyTorch DDP over all
ranks (gloo on the CPU, nccl on CUDA), each rank training on its own batches while the in-batch
negatives are gathered across ranks, so the negative pool is the global batch as in one process. DDP
copies the leader's weights to every rank when a round starts, so the followers need no files.

A rank that fails takes the run down: torchrun stops the others at once, and a follower waiting for
the leader gives up after ``timeout`` seconds with a clear error instead of hanging. ``--resume`` works as
on one process (the leader resumes from the run folder; the followers need nothing from it).

Example:
    >>> world_size(), rank(), is_leader()
    (1, 0, True)
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sparsefit.errors import SparsefitError

DEFAULT_TIMEOUT = 1800  # seconds a follower waits for the leader's next round (it indexes and mines meanwhile)


def world_size() -> int:
    """Processes in the run (torchrun sets WORLD_SIZE); 1 without torchrun."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def rank() -> int:
    """This process's rank (0: the leader)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def is_leader() -> bool:
    """True on the process that writes the run folder, the index and the model."""
    return rank() == 0


def timeout_seconds() -> float:
    """How long a rank waits for the others: ``SPARSEFIT_DISTRIBUTED_TIMEOUT`` seconds, default 1800."""
    try:
        return max(1.0, float(os.environ.get("SPARSEFIT_DISTRIBUTED_TIMEOUT", DEFAULT_TIMEOUT)))
    except ValueError:
        raise SparsefitError("SPARSEFIT_DISTRIBUTED_TIMEOUT is not a number of seconds", hint="e.g. 1800") from None


def start(device: str) -> None:
    """Join the process group (gloo on the CPU, nccl on CUDA) unless there is one; a no-op on one process.

    torchrun stops every rank when one fails; SIGTERM (how it stops them) becomes a one-line error here.
    """
    import signal

    import torch.distributed as dist

    if world_size() == 1 or dist.is_initialized():
        return
    timeout = timeout_seconds()

    def stopped(signum, frame):  # noqa: ARG001
        raise SparsefitError(f"rank {rank()}: another process of this distributed run failed, and torchrun stopped this one",
                             hint="see the other ranks' errors above; continue with torchrun ... -m sparsefit train --resume RUN")

    signal.signal(signal.SIGTERM, stopped)
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    try:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout))
    except Exception as exc:  # rendezvous: a wrong endpoint or a node that never came
        raise SparsefitError(f"rank {rank()} could not join the other {world_size() - 1} process(es): "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
                             hint="check --rdzv-endpoint / --master-addr and that every node runs the same command") from None


def stop() -> None:
    """Leave the process group (each rank, at its end)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


@dataclass
class Message:
    """What the leader sends the followers: ``train`` (a round's rows and options), ``done`` or ``failed``."""

    kind: str  # start (options: the Settings), train, encode (rows: texts), done, failed
    rows: list[dict[str, str]] = field(default_factory=list)
    options: Any = None
    round: int = -1
    reason: str = ""


def send(message: Message) -> None:
    """The leader's broadcast to every follower (a no-op on one process)."""
    if world_size() > 1:
        try:
            _broadcast(message)
        except SparsefitError:
            raise
        except Exception as exc:
            raise peer_lost(exc) from None


def peer_lost(exc: BaseException) -> SparsefitError:
    """The one-line error for a collective that failed because another rank is gone or late."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = first.split("] ", 1)[-1][:160]  # gloo prefixes the C++ source location
    return SparsefitError(f"rank {rank()}: another process of this distributed run failed or stopped answering ({first})",
                          hint="see the other ranks' errors above; continue with torchrun ... -m sparsefit train --resume RUN")


def is_collective_failure(exc: BaseException) -> bool:
    """True for the errors torch raises when a peer of a collective died or timed out."""
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        marker in text for marker in ("Connection closed by peer", "Connection reset by peer", "gloo", "NCCL", "timed out"))


def receive() -> Message:
    """A follower's wait for the leader's next message; a timeout or a lost leader is a clear error."""
    try:
        return _broadcast(None)
    except SparsefitError:
        raise
    except Exception as exc:  # gloo/nccl timeouts and closed connections surface as RuntimeError/DistBackendError
        raise SparsefitError(f"rank {rank()}: lost the leader (rank 0) of this distributed run "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})",
                             hint="see rank 0's error; continue the run with torchrun ... -m sparsefit train --resume RUN") from None


def _broadcast(message: Message | None) -> Message:
    import torch.distributed as dist

    box = [pickle.dumps(message) if message is not None else None]
    dist.broadcast_object_list(box, src=0)
    received = pickle.loads(box[0]) if isinstance(box[0], bytes) else box[0]
    if not isinstance(received, Message):
        raise SparsefitError(f"rank {rank()}: the leader sent something that is not a sparsefit message")
    return received


def _shard(count: int, of: int, index: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of ``count`` that rank ``index`` of ``of`` encodes (contiguous, sizes differ by one at most).

    Example:
        >>> [_shard(10, 3, r) for r in range(3)]
        [(0, 4), (4, 7), (7, 10)]
    """
    base, extra = divmod(count, of)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


def _gather(part):
    """Every rank's ``part`` at the leader, in rank order (None on the followers)."""
    import torch.distributed as dist

    parts = [None] * world_size() if is_leader() else None
    dist.gather_object(part, parts, dst=0)
    return parts


class ShardedEncoder:
    """An encoder whose ``encode_documents`` is split over every rank of a torchrun run (the leader's own
    encoder on one process). The catalog encoding of indexing, the bulk of its time, then runs on all
    GPUs or CPU processes. The weights go to the followers once per model (by fingerprint)."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)

    def encode_documents(self, texts, *, batch_size: int | None = None, progress=None):
        import scipy.sparse as sp

        options = {} if batch_size is None else {"batch_size": batch_size}
        if world_size() == 1:
            return self._encoder.encode_documents(texts, progress=progress, **options)
        texts = list(texts)
        fingerprint = self._encoder.fingerprint()
        state = None
        if _SENT.get("fingerprint") != fingerprint:
            state = {k: v.detach().cpu() for k, v in self._encoder.model.state_dict().items()}
        send(Message("encode", rows=texts, options={"state": state, "batch_size": batch_size}))
        _SENT["fingerprint"] = fingerprint
        start, stop = _shard(len(texts), world_size(), 0)
        mine = self._encoder.encode_documents(texts[start:stop], **options)
        try:
            parts = _gather(mine)
        except Exception as exc:
            raise peer_lost(exc) from None
        if progress:
            progress(len(texts))
        return sp.vstack(parts, format="csr")


_SENT: dict[str, str] = {}  # the fingerprint of the weights the followers hold for encoding


def _encode_share(encoder, message: Message) -> None:
    """A follower's share of a :class:`ShardedEncoder` call: load the weights if sent, encode its rows, gather."""
    if message.options.get("state") is not None:
        encoder.model.load_state_dict(message.options["state"])
    start, stop = _shard(len(message.rows), world_size(), rank())
    options = {} if message.options.get("batch_size") is None else {"batch_size": message.options["batch_size"]}
    _gather(encoder.encode_documents(message.rows[start:stop], **options))


def follow() -> int:
    """A follower's whole life: take the run's settings from the leader, then train every round it sends,
    until it says done; returns the rounds trained.

    The follower starts from the base model; DDP overwrites its weights with the leader's at each round's start.
    """
    import tempfile
    from pathlib import Path

    from sparsefit.devices import resolve_device
    from sparsefit.models import load_encoder
    from sparsefit.training import train_round

    first = receive()
    if first.kind == "failed":
        raise SparsefitError(f"rank {rank()}: the leader (rank 0) stopped: {first.reason}")
    if first.kind != "start":
        raise SparsefitError(f"rank {rank()}: expected the run's settings from the leader, got {first.kind!r}")
    settings = first.options
    device = resolve_device(settings.device)
    encoder = load_encoder(settings.base_model, architecture=settings.architecture,
                           max_seq_length=settings.max_seq_length, device=device)
    trained = 0
    with tempfile.TemporaryDirectory(prefix=f"sparsefit-rank{rank()}-") as scratch:
        while True:
            message = receive()
            if message.kind == "done":
                return trained
            if message.kind == "failed":
                raise SparsefitError(f"rank {rank()}: the leader (rank 0) stopped: {message.reason}")
            if message.kind == "encode":
                _encode_share(encoder, message)
                continue
            if message.kind != "train":
                raise SparsefitError(f"rank {rank()}: unknown message {message.kind!r} from the leader")
            train_round(encoder, message.rows, message.options, Path(scratch) / f"round-{message.round}")
            trained += 1
