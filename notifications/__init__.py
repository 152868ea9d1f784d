"""Notifications of the metrics mart's alerts (marts.fct_alerts), without Grafana."""
