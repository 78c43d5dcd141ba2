"""An S3-compatible object store on the same server, authorized by the IAM policy engine.

Modules, one concern each:
``addressing`` (which requests are S3, bucket and key from Host and path), ``auth`` (SigV4 as S3
checks it: header, presigned, unsigned and streaming payloads), ``chunked`` (aws-chunked bodies,
chunk signatures, trailing checksums), ``checksums`` (Content-MD5 and ``x-amz-checksum-*``),
``storage`` (object bytes in the data dir: temp file, fsync, rename), ``authz`` (identity policy +
bucket policy + cross-account rule, S3 condition keys), ``buckets``/``objects``/``listing``/
``multipart``/``bucket_policy``/``tagging`` (the operations), ``xml`` (S3's documents and error
shape), ``app`` (the ASGI entry point that ties them together), ``demo_data`` (walkthrough data).
"""
