"""The metadata store: SQLAlchemy Core tables, repository functions, Alembic migrations."""
