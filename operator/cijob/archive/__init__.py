"""The log archive: each ended attempt's container logs, kept in a directory or an S3 bucket."""
