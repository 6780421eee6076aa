"""What both services share: configuration parsing, JSON logs, metrics, HTTP plumbing,
the SQL dialect layer and a waitress server that drains on SIGTERM."""
