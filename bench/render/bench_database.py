"""The throwaway database of a benchmark run: a temporary SQLite file or a PostgreSQL database.

Both are created before Django is set up and removed when the run ends.
"""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg
from psycopg import sql

POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}


class BenchDatabaseError(Exception):
    """A benchmark database that cannot be created or would overwrite existing data."""


class BenchDatabase:
    """A database created for one benchmark run and dropped afterwards."""

    def __init__(self, url: str, *, replace_existing: bool = False):
        self.url = url
        self.replace_existing = replace_existing
        parts = urlsplit(url)
        self.engine = "postgresql" if parts.scheme in POSTGRES_SCHEMES else "sqlite"
        self.created = False

    @classmethod
    def temporary_sqlite(cls, folder: Path) -> "BenchDatabase":
        return cls(f"sqlite:///{folder / 'bench.sqlite3'}")

    @property
    def label(self) -> str:
        """The file path, or the URL without a password, for printing."""
        if self.engine == "sqlite":
            return str(self._sqlite_path())
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))

    def create(self) -> None:
        """Create the PostgreSQL database, or clear the way for the SQLite file.

        The first migration creates the SQLite file.
        """
        if self.engine == "sqlite":
            path = self._sqlite_path()
            if path.exists() and not self.replace_existing:
                raise BenchDatabaseError(
                    f"{path} already exists; pass --replace-database to overwrite it."
                )
            path.unlink(missing_ok=True)
            self.created = True
            return
        name = self._postgres_name()
        with self._postgres_admin_connection() as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists and not self.replace_existing:
                raise BenchDatabaseError(
                    f"database {name!r} already exists; pass --replace-database to drop "
                    "and recreate it, or name a database that does not exist."
                )
            if exists:
                connection.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
                )
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created = True

    def drop(self) -> None:
        """Remove the database if this run created it."""
        if not self.created:
            return
        if self.engine == "sqlite":
            path = self._sqlite_path()
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            with self._postgres_admin_connection() as connection:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self._postgres_name())
                    )
                )
        self.created = False

    def _sqlite_path(self) -> Path:
        """Return the file path the way portal.settings reads DATABASE_URL."""
        return Path(dj_database_url.parse(self.url)["NAME"])

    def _postgres_name(self) -> str:
        name = urlsplit(self.url).path.lstrip("/")
        if not name:
            raise BenchDatabaseError(f"{self.label} names no database; add one after the port.")
        if name in {"postgres", "template0", "template1"}:
            raise BenchDatabaseError(
                f"{name!r} is a system database and cannot be used; name a new database."
            )
        return name

    def _postgres_admin_connection(self) -> psycopg.Connection:
        """Connect to the server's `postgres` database to create or drop the bench database."""
        parts = urlsplit(self.url)
        admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
        return psycopg.connect(admin_url, autocommit=True)
