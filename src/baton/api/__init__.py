"""The REST API edge: thin routers over the domains and the runtime pipeline."""
