"""Persistence: SQLAlchemy 2 async models, repositories and Alembic migrations."""

from storage.db import Database

__all__ = ["Database"]
