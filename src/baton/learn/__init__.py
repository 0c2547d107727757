"""KPIs, trust per runbook, and feedback from outcomes."""
