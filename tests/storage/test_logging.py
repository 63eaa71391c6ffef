"""No storage password in any log record, whichever logger makes it."""

from __future__ import annotations

import logging

import pytest

from diswot.storage import MaskPasswordsFilter, install_log_masking

URL = "postgresql+psycopg2://user:secret@db.example:5432/studies"


def test_log_records_are_masked(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.getLogger("optuna"), "propagate", True)  # optuna has its own handler
    install_log_masking()
    install_log_masking()  # idempotent
    caplog.set_level(logging.DEBUG)
    for name in ("diswot.x", "optuna.storages", "sqlalchemy.engine"):
        logging.getLogger(name).warning("opening %s", URL)
    logging.getLogger("diswot.y").warning(f"inline {URL}")
    try:
        raise RuntimeError(f"cannot connect to {URL}")
    except RuntimeError:
        logging.getLogger("diswot.z").exception("failed")
    text = caplog.text
    assert "secret" not in text
    assert text.count("user:***@db.example") == 5


def test_filter_masks_a_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "url %s", (URL,), None)
    assert MaskPasswordsFilter().filter(record)
    assert "secret" not in record.getMessage()
