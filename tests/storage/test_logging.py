"""No storage password in any log record, whichever logger makes it."""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

from diswot.storage import MaskPasswordsFilter, install_log_masking, uninstall_log_masking

URL = "postgresql+psycopg2://user:secret@db.example:5432/studies"
MASKED = "user:***@db.example"


@pytest.fixture
def masking() -> Iterator[None]:
    """Log masking for one test; the process's previous log-record factory is restored after."""
    before = logging.getLogRecordFactory()
    uninstall_log_masking()  # a command run earlier in this process may have installed it
    install_log_masking()
    install_log_masking()  # idempotent
    yield
    uninstall_log_masking()
    logging.setLogRecordFactory(before)


def test_log_records_are_masked(
    masking: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("optuna"), "propagate", True)  # optuna has its own handler
    caplog.set_level(logging.DEBUG)
    for name in ("diswot.x", "optuna.storages", "sqlalchemy.engine"):
        logging.getLogger(name).warning("opening %s", URL)
    logging.getLogger("diswot.y").warning(f"inline {URL}")
    try:
        raise RuntimeError(f"cannot connect to {URL}")
    except RuntimeError:
        logging.getLogger("diswot.z").exception("failed")
    assert "secret" not in caplog.text
    # one record per call, whether a handler saw it once or (pytest >= 9.2, non-propagating
    # loggers) twice: compare the distinct records, not the captured text
    records = list({id(r): r for r in caplog.records}.values())
    assert [r.name for r in records] == ["diswot.x", "optuna.storages", "sqlalchemy.engine", "diswot.y", "diswot.z"]
    for record in records[:4]:
        assert MASKED in record.getMessage() and "secret" not in record.getMessage()
    assert MASKED in (records[4].exc_text or "") and "secret" not in (records[4].exc_text or "")


def test_uninstall_restores_the_factory() -> None:
    before = logging.getLogRecordFactory()
    uninstall_log_masking()
    plain = logging.getLogRecordFactory()
    install_log_masking()
    assert logging.getLogRecordFactory() is not plain
    uninstall_log_masking()
    assert logging.getLogRecordFactory() is plain
    logging.setLogRecordFactory(before)


def test_filter_masks_a_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "url %s", (URL,), None)
    assert MaskPasswordsFilter().filter(record)
    assert "secret" not in record.getMessage()
