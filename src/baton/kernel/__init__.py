"""What every domain needs and nothing above it: time, errors, the audit ledger, statuses."""
