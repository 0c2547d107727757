"""Classification, similar cases and runbook proposals with evidence."""
