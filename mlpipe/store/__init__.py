"""What MLPipe keeps on local disk: the cache, job records, md5 memo, locks."""
