"""KPIs, track record per runbook, and feedback from outcomes."""
