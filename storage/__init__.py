"""Storage URLs and backends, heartbeats and resume, study metadata."""
