"""Warehouse access: settings, the embedded PostgreSQL, the raw loader and the data generator."""
