"""System of record: SQLAlchemy models, Alembic migrations, engines and sessions."""
