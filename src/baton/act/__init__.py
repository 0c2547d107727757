"""Runbooks as data: loading, validation, actions, execution, verification, rollback."""
