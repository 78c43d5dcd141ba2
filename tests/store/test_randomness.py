"""The block-buffered CSPRNG behind ids and AES-GCM nonces: never a repeated value, not across a fork."""

from __future__ import annotations

import os
import re
import threading
import uuid

from rolebridge import randomness

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_uuid4_has_the_shape_and_version_of_uuid4() -> None:
    for _ in range(2000):
        text = randomness.uuid4()
        assert UUID4.match(text), text
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_no_value_is_handed_out_twice_across_blocks_and_threads() -> None:
    seen: list[bytes] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [randomness.token_bytes(12) for _ in range(3000)]  # several blocks per thread
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == len(seen) == 12000


def test_a_forked_child_never_reuses_the_parents_unused_bytes() -> None:
    randomness.token_bytes(12)  # the parent now holds a block with unused bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: what it draws must not be what the parent draws next
        try:
            os.write(write, randomness.token_bytes(12))
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 12)
    os.close(read)
    os.waitpid(pid, 0)
    parent_next = randomness.token_bytes(12)
    assert len(child) == 12 and child != parent_next


def test_large_requests_come_straight_from_the_os() -> None:
    a, b = randomness.token_bytes(4096), randomness.token_bytes(4096)
    assert len(a) == 4096 and a != b


def test_the_remembered_process_id_is_renewed_in_a_forked_child() -> None:
    """The fork checks (random blocks, the audit writer, the lookup cache's connection) compare
    ``rolebridge.pid.current()``; it must be the child's own id right after ``os.fork``."""
    from rolebridge import pid as remembered

    assert remembered.current() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.write(write, f"{remembered.current()} {os.getpid()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    seen, real = os.read(read, 64).decode().split()
    os.close(read)
    os.waitpid(child, 0)
    assert seen == real == str(child)
    assert remembered.current() == os.getpid() != child


UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_uuid7_is_a_version_7_uuid_ordered_by_its_time() -> None:
    base = 1_796_000_000.0
    ids = [randomness.uuid7(base + i / 1000) for i in range(2000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert UUID7.match(text) and parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
    assert ids == sorted(ids), "later milliseconds sort later (as text and as bytes)"
    assert int(ids[0].replace("-", "")[:12], 16) == int(base * 1000)  # the 48-bit Unix milliseconds
    same = {randomness.uuid7(base) for _ in range(2000)}  # one millisecond: the 74 random bits differ
    assert len(same) == 2000
    for odd in (float("nan"), float("inf"), -5.0, 1e30):
        assert UUID7.match(randomness.uuid7(odd))
    assert randomness.uuid7(-5.0).startswith("00000000-0000-7")
