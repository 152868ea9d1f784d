"""Prefect flows and the `salesmon` command line."""
