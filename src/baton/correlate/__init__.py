"""Fingerprints, dedup and grouping of events into incidents over the service topology."""
