"""Settings, clock, logging, task backends and the pipeline that wires the domains."""
