"""A session with a CryoSPARC instance for a host driver, with cryosparc-tools' usual settings
(``CRYOSPARC_HOST`` or ``CRYOSPARC_MASTER_HOSTNAME``, ``CRYOSPARC_BASE_PORT``,
``CRYOSPARC_EMAIL``, ``CRYOSPARC_PASSWORD``, ``CRYOSPARC_LICENSE_ID``), from the environment or
an env file (``KEY=VALUE`` lines). An instance that does not answer, or refuses the
credentials, is a :class:`CryoSPARCConnectionError` naming the host and port, never the
password. cryosparc-tools is imported only when a session is opened (the ``cryosparc``
extra)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryosparc.tools import CryoSPARC

SETTINGS = (
    "CRYOSPARC_HOST",
    "CRYOSPARC_MASTER_HOSTNAME",
    "CRYOSPARC_BASE_PORT",
    "CRYOSPARC_EMAIL",
    "CRYOSPARC_PASSWORD",
    "CRYOSPARC_LICENSE_ID",
)
DEFAULT_PORT = 39000


class CryoSPARCConnectionError(Exception):
    """The settings are unusable or the instance did not answer; the message says what to do."""


@dataclass(frozen=True)
class Connection:
    """A host setting: where the instance is (``host``, ``port``) and who connects."""

    host: str
    port: int
    email: str | None
    password: str | None = field(repr=False)
    license: str | None = field(repr=False)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` and quotes allowed, ``#`` comments skipped)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise CryoSPARCConnectionError(
            f"--env-file {path}: cannot be read ({exc.strerror})"
        ) from None
    values: dict[str, str] = {}
    for line in lines:
        text = line.strip().removeprefix("export ").strip()
        if text and not text.startswith("#") and "=" in text:
            key, _, value = text.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def connection_settings(env_file: Path | None) -> Connection:
    """The connection settings: the env file's, else the environment's."""
    found = {k: os.environ[k] for k in SETTINGS if os.environ.get(k)}
    if env_file is not None:
        found.update({k: v for k, v in read_env_file(env_file).items() if k in SETTINGS and v})
    port_text = found.get("CRYOSPARC_BASE_PORT", str(DEFAULT_PORT))
    if not port_text.isdigit():
        raise CryoSPARCConnectionError(f"CRYOSPARC_BASE_PORT {port_text!r} is not a port number")
    host = found.get("CRYOSPARC_HOST") or found.get("CRYOSPARC_MASTER_HOSTNAME") or "localhost"
    email, password = found.get("CRYOSPARC_EMAIL"), found.get("CRYOSPARC_PASSWORD")
    license_id = found.get("CRYOSPARC_LICENSE_ID")
    if not (email and password) and not license_id:
        raise CryoSPARCConnectionError(
            "no CryoSPARC credentials: set CRYOSPARC_EMAIL and CRYOSPARC_PASSWORD (in the "
            "environment or in the file given with --env-file)"
        )
    return Connection(host, int(port_text), email, password, license_id)


def connect(settings: Connection) -> CryoSPARC:
    """A session with the instance; :class:`CryoSPARCConnectionError` naming the host and port
    (never the password) when it does not answer or refuses the credentials."""
    from cryosparc.tools import CryoSPARC

    try:
        with warnings.catch_warnings():  # the client's retries, each a warning: said once below
            warnings.simplefilter("ignore")
            return CryoSPARC(
                host=settings.host,
                base_port=settings.port,
                email=settings.email,
                password=settings.password,
                license=None if settings.email and settings.password else settings.license,
                timeout=30,
            )
    except Exception as exc:
        cause = str(exc.__cause__ or exc).strip().splitlines()
        reason = f" ({cause[0][:200]})" if cause else ""
        raise CryoSPARCConnectionError(
            f"no CryoSPARC instance answered at {settings.where}{reason} (or it refused the "
            "credentials): check CRYOSPARC_HOST and CRYOSPARC_BASE_PORT (the port of the web "
            "interface), that the instance is running, and CRYOSPARC_EMAIL/CRYOSPARC_PASSWORD"
        ) from None
