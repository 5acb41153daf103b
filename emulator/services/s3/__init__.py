"""S3, locally: a bucket is a folder (store.py), a REST server speaks the S3 API over it (server.py)."""
