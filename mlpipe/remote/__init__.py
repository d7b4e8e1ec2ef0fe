"""S3 access and the S3 mirror of the cache."""
