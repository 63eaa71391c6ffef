"""Passwords of storage URLs never reach a log line: a log-record factory that masks them."""

from __future__ import annotations

import contextlib
import logging
import traceback
from typing import Any, Iterator

from ._url import mask_url

__all__ = ["MaskPasswordsFilter", "install_log_masking", "masked_logs", "uninstall_log_masking"]

#: the log-record factory that was in place before :func:`install_log_masking`, while installed
_previous: Any = None


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: leave it to logging's own error handling
        return
    masked = mask_url(message)
    if masked != message or record.args:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_url("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = mask_url(record.stack_info)


class MaskPasswordsFilter(logging.Filter):
    """A handler filter that masks URL passwords in the message, its arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drops it."""
        _mask_record(record)
        return True


def install_log_masking() -> None:
    """Mask URL passwords in every log record of this process, from every logger (idempotent).

    Installs a log-record factory, so records are masked before any handler or formatter sees
    them, whichever logger (ours, Optuna's, SQLAlchemy's) made them.
    """
    global _previous
    if _previous is not None:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _previous = previous


def uninstall_log_masking() -> None:
    """Restore the log-record factory that :func:`install_log_masking` replaced (idempotent)."""
    global _previous
    if _previous is None:
        return
    logging.setLogRecordFactory(_previous)
    _previous = None


@contextlib.contextmanager
def masked_logs() -> Iterator[None]:
    """URL passwords masked in every log record inside the block; the factory in force restored after.

    Inside an installed masking (the command line's, or an outer block) it changes nothing.
    """
    if _previous is not None:
        yield
        return
    install_log_masking()
    try:
        yield
    finally:
        uninstall_log_masking()
