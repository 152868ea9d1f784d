"""Warehouse access: settings, the embedded PostgreSQL, and the raw loader."""
