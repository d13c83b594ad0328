"""Where state lives: SQL tables and migrations, the repository, object storage, rate-limit
buckets, key hashes."""
