"""Reports drawn from the metrics mart: `salesmon report` writes a page of charts (reporting.page)."""
