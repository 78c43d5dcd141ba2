"""Audit building blocks in-process: redaction, event shape for refusals, group commit, fail closed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rolebridge import errors
from rolebridge.audit import HIDDEN, AuditWriter, build_event, iter_events, parse_time, redact
from rolebridge.config import resolve_paths
from rolebridge.store import open_store


def test_redaction_hides_secret_members_at_any_depth_and_in_flattened_names() -> None:
    out = redact({"WebIdentityToken": "eyJ.a.b", "Credentials": {"AccessKeyId": "ASIA1", "SecretAccessKey": "s",
                                                                 "SessionToken": "t"},
                  "X-Amz-Security-Token": "t2", "Tags.member.1.Key": "k", "Policy": '{"Version":"2012-10-17"}',
                  "List": [{"session_token": "t3"}]})
    assert out == {"webIdentityToken": HIDDEN, "credentials": {"accessKeyId": "ASIA1", "secretAccessKey": HIDDEN,
                                                               "sessionToken": HIDDEN},
                   "x-Amz-Security-Token": HIDDEN, "tags.member.1.Key": "k", "policy": '{"Version":"2012-10-17"}',
                   "list": [{"session_token": HIDDEN}]}


def test_refused_call_event_from_flat_params_without_a_caller() -> None:
    event = build_event(service="sts", action="AssumeRoleWithWebIdentity", now=1_700_000_000, request_id="r-1",
                        caller=None, params={"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                                             "RoleArn": "arn:aws:iam::123456789012:role/r",
                                             "WebIdentityToken": "not-a-jwt", "RoleSessionName": "s"},
                        error=errors.InvalidIdentityToken("bad"), source_ip="10.0.0.1", user_agent="ua")
    assert event["eventTime"] == "2023-11-14T22:13:20Z"
    assert event["userIdentity"] == {"type": "WebIdentityUser", "principalId": "Unknown::Unknown",
                                     "userName": "Unknown", "identityProvider": "Unknown"}
    assert event["requestParameters"] == {"roleArn": "arn:aws:iam::123456789012:role/r",
                                          "webIdentityToken": HIDDEN, "roleSessionName": "s"}
    assert (event["errorCode"], event["errorMessage"]) == ("InvalidIdentityToken", "bad")
    assert event["recipientAccountId"] == "123456789012" and event["responseElements"] is None
    internal = build_event(service="iam", action="ListRoles", now=0, request_id="r-2", caller=None, params=None,
                           error=KeyError("boom"))
    assert internal["errorCode"] == "InternalFailure" and "boom" not in json.dumps(internal)


def test_parse_time_forms() -> None:
    assert parse_time("2023-11-14T22:13:20Z") == 1_700_000_000
    assert parse_time("1700000000") == 1_700_000_000
    assert parse_time("15m", now=1_000_000) == 1_000_000 - 900
    with pytest.raises(ValueError, match="is not a time"):
        parse_time("yesterday")


def _event(i: int) -> dict:
    return build_event(service="iam", action="CreateRole", now=1_700_000_000 + i, request_id=f"req-{i}",
                       caller=None, params={"RoleName": f"r{i}"}, result={"Role": {"RoleName": f"r{i}"}})


def test_group_commit_batches_concurrent_events_and_loses_none(tmp_path: Path) -> None:
    store = open_store(resolve_paths(tmp_path))
    writer = AuditWriter(store)
    futures, lock = [], threading.Lock()

    def submit(start: int) -> None:
        for i in range(start, start + 50):
            f = writer.submit(_event(i))
            with lock:
                futures.append(f)

    threads = [threading.Thread(target=submit, args=(n * 50,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in futures:
        f.result(timeout=30)
    writer.close()
    ids = [e["requestID"] for e in iter_events(store, limit=None)]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(400))
    print(f"400 events in {writer.batches} commits")
    assert writer.batches < 400  # concurrent submitters share commits
    since = parse_time("2023-11-14T22:13:20Z") + 350
    assert sorted(e["requestID"] for e in iter_events(store, since=since)) == sorted(
        f"req-{i}" for i in range(350, 400))
    store.dispose()


def test_a_failed_append_fails_every_waiting_call_and_nothing_is_recorded(tmp_path: Path) -> None:
    store = open_store(resolve_paths(tmp_path))
    (tmp_path / "audit").write_text("not a directory")  # the journal cannot be written
    writer = AuditWriter(store)
    futures = [writer.submit(_event(i)) for i in range(3)]
    for future in futures:
        with pytest.raises(OSError):
            future.result(timeout=30)
    writer.close()
    (tmp_path / "audit").unlink()
    assert list(iter_events(store, limit=None)) == []
    store.dispose()


def test_waiters_that_gave_up_do_not_stop_the_writer(tmp_path: Path) -> None:
    """A cancelled waiter (a request cancelled at shutdown) is skipped; the calls after it are still served."""
    store = open_store(resolve_paths(tmp_path))
    writer = AuditWriter(store)
    abandoned = [writer.submit(_event(i)) for i in range(300)]
    cancelled = sum(f.cancel() for f in abandoned)  # those not yet completed give up
    later = [writer.submit(_event(i)) for i in range(300, 310)]
    for f in later:
        f.result(timeout=30)  # the writer thread is alive: it served them
    writer.close()
    ids = {e["requestID"] for e in iter_events(store, limit=None)}
    assert {f"req-{i}" for i in range(300, 310)} <= ids
    assert len(ids) == 310  # a waiter giving up does not unwrite its event (it was submitted)
    print(f"{cancelled} of 300 cancelled before they completed")
    store.dispose()


def _write_events(data_dir: str, start: int, n: int) -> None:
    store = open_store(resolve_paths(data_dir))
    writer = AuditWriter(store)
    futures = [writer.submit(_event(i)) for i in range(start, start + n)]
    for f in futures:
        f.result(timeout=60)
    writer.close()
    store.dispose()


def test_writers_of_several_processes_lose_nothing(tmp_path: Path) -> None:
    # --workers N: one journal segment per process (0600 in a 0700 dir); the reader moves them all in
    import multiprocessing
    import os
    import stat

    open_store(resolve_paths(tmp_path)).dispose()  # schema first, as the server does before its workers
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_events, args=(str(tmp_path), n * 200, 200)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = open_store(resolve_paths(tmp_path))
    ids = sorted(e["requestID"] for e in iter_events(store, limit=None))
    assert ids == sorted(f"req-{i}" for i in range(600))
    assert stat.S_IMODE(os.stat(tmp_path / "audit").st_mode) == 0o700
    assert list((tmp_path / "audit").glob("*.jsonl")) == []  # finished segments are gone once moved
    store.dispose()


def test_limit_keeps_the_newest_events_in_time_order(tmp_path: Path) -> None:
    store = open_store(resolve_paths(tmp_path))
    writer = AuditWriter(store)
    for f in [writer.submit(_event(i)) for i in range(30)]:
        f.result(timeout=30)
    writer.close()
    newest = [e["requestID"] for e in iter_events(store, limit=5, newest=True)]
    assert newest == [f"req-{i}" for i in range(25, 30)]
    assert [e["requestID"] for e in iter_events(store, limit=5)] == [f"req-{i}" for i in range(5)]
    assert len(list(iter_events(store, limit=100, newest=True))) == 30
    assert list(iter_events(store, limit=0, newest=True)) == []
    store.dispose()
