from __future__ import annotations

import logging

from rich.logging import RichHandler

from matforge.core import progress


def test_logging_levels_follow_quiet_and_verbose() -> None:
    logger = logging.getLogger(progress.LOGGER_NAME)
    try:
        progress.configure_logging(0, quiet=True)
        assert logger.level == logging.WARNING
        assert progress.is_quiet()
        progress.configure_logging(1)
        assert logger.level == logging.DEBUG
        progress.configure_logging(0)
        assert logger.level == logging.INFO
        assert not progress.is_quiet()
        # Repeated configuration must not stack handlers (duplicate log lines).
        assert sum(isinstance(h, RichHandler) for h in logger.handlers) == 1
    finally:
        progress.configure_logging(0, quiet=True)


def test_child_loggers_share_the_matforge_root() -> None:
    assert progress.get_logger("calphad.solver").name == "matforge.calphad.solver"
    assert progress.get_logger("matforge.mlip").name == "matforge.mlip"
