"""Logging of a run: each job's lines go to its ``job.log`` and, unless quiet, to the screen as
``[JOB] line``; the library's own messages (notices, warnings) go through :mod:`logging` under
the ``align3d`` and module names."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

JOB_LOG = "job.log"
"""The file, in each job's folder, that the job's lines go to."""


@contextmanager
def job_logger(name: str, log_file: Path, quiet: bool) -> Iterator[logging.Logger]:
    """A logger for job ``name`` writing plain lines to ``log_file`` (and ``[name] line`` to
    stdout unless ``quiet``), for the duration of the block."""
    logger = logging.getLogger(f"align3d.job.{name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers: list[logging.Handler] = [logging.FileHandler(log_file, encoding="utf-8")]
    handlers[0].setFormatter(logging.Formatter("%(message)s"))
    if not quiet:
        screen = logging.StreamHandler(sys.stdout)
        screen.setFormatter(logging.Formatter(f"[{name}] %(message)s"))
        handlers.append(screen)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield logger
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()


RUN_LOGGER = "align3d.run"
"""Lines about the jobs of a run outside their logs (reused, recomputed, complete): stdout."""


def configure_cli_logging(quiet: bool) -> None:
    """How the command line shows the library's messages: run notices on stdout (unless
    ``quiet``), warnings and errors of every module on stderr as ``align3d: message``."""
    root = logging.getLogger("align3d")
    for name, stream, level in (
        (RUN_LOGGER, sys.stdout, logging.WARNING if quiet else logging.INFO),
        ("align3d", sys.stderr, logging.WARNING),
    ):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(
            logging.Formatter("%(message)s" if name == RUN_LOGGER else "align3d: %(message)s")
        )
        logger.addHandler(handler)
        logger.setLevel(level)
    logging.getLogger(RUN_LOGGER).propagate = False
    for module in ("engine", "jobs", "slots"):  # module loggers report through the same handler
        logging.getLogger(module).handlers.clear()
        logging.getLogger(module).addHandler(root.handlers[0])
        logging.getLogger(module).setLevel(logging.WARNING)
        logging.getLogger(module).propagate = False
