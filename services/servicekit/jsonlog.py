"""JSON-line logs on stdout, one object per line, so any log pipeline can parse them."""

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # waitress logs each queue backlog warning; keep them, but as JSON through the root handler.
    logging.getLogger("waitress").propagate = True
