"""kill -9 during concurrent multipart uploads: no completed object is lost, no partial one shows.

Workers upload multipart objects in a loop (each part's content derived from the key, so any
object can be checked without keeping it). The server is killed with SIGKILL while uploads and
completions are in flight, then restarted on the same data dir. Every object whose
CompleteMultipartUpload returned must be present and byte-identical; any other object present
(completion committed, response lost) must be whole too; nothing else may exist. Every upload whose
CreateMultipartUpload returned is then exactly one of: a visible object, or an upload still listed
(abortable); never both, never neither.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError
from s3_helpers import s3_client

from conftest import start_server, stop_server

ACCT = "954000000001"
BUCKET = "durable"
PART = 5 * 1024 * 1024


def part_bytes(key: str, number: int, size: int) -> bytes:
    seed = hashlib.sha256(f"{key}/{number}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def object_bytes(key: str) -> bytes:
    return part_bytes(key, 1, PART) + part_bytes(key, 2, 1000 + len(key))


def test_kill9_during_concurrent_multipart(tmp_path):  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "data", tmp_path / "home")
    completed: list[str] = []
    attempted: list[str] = []
    created: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()
    try:
        s3 = s3_client(srv, account=ACCT)
        s3.create_bucket(Bucket=BUCKET)

        def worker(n: int) -> None:
            client = s3_client(srv, account=ACCT)
            i = 0
            while not stop.is_set():
                key = f"w{n}/obj-{i}"
                i += 1
                with lock:
                    attempted.append(key)
                try:
                    up = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                    with lock:
                        created.append(key)
                    parts = []
                    for number, data in ((1, part_bytes(key, 1, PART)), (2, part_bytes(key, 2, 1000 + len(key)))):
                        etag = client.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=number,
                                                  Body=data)["ETag"]
                        parts.append({"PartNumber": number, "ETag": etag})
                    client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up,
                                                     MultipartUpload={"Parts": parts})
                except (ClientError, BotoCoreError, OSError):
                    return  # the server died under us
                with lock:
                    completed.append(key)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(completed) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let more uploads and completions be in flight
        os.kill(srv.process.pid, signal.SIGKILL)
        srv.process.wait()
        stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        stop.set()
        stop_server(srv)

    srv2 = start_server(tmp_path / "data", tmp_path / "home")
    try:
        srv2.accounts = srv.accounts
        s3 = s3_client(srv2, account=ACCT)
        present = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            present += [o["Key"] for o in page.get("Contents", [])]
        print(f"completed={len(completed)} present={len(present)} attempted={len(attempted)}")
        assert len(completed) >= 6
        missing = sorted(set(completed) - set(present))
        assert not missing, f"completed objects lost: {missing}"
        assert set(present) <= set(attempted)
        for key in present:  # every visible object is whole, including completions whose answer was lost
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert body == object_bytes(key), key
        # interrupted uploads are still listed (abortable), never visible as objects: Complete makes the
        # object visible and removes the upload in one transaction, and each key is uploaded once
        uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        open_keys = [u["Key"] for u in uploads]
        assert len(open_keys) == len(set(open_keys)), f"an upload listed twice: {sorted(open_keys)}"
        assert set(open_keys) <= set(attempted), f"uploads nobody started: {sorted(set(open_keys) - set(attempted))}"
        both = sorted(set(open_keys) & set(present))
        assert not both, f"visible objects whose upload is still open: {both}"
        vanished = sorted(set(created) - set(present) - set(open_keys))
        assert not vanished, f"created uploads neither completed nor listed: {vanished}"
        for u in uploads:
            s3.abort_multipart_upload(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
        assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    finally:
        stop_server(srv2)
