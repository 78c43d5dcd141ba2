"""The audit trail: every IAM and STS call, allowed or refused, as a CloudTrail-shaped event.

``events.build_event`` shapes one event (secrets redacted there, once); ``writer.AuditWriter``
makes it durable with group commit before the response is sent; ``query`` reads it back for
``rolebridge audit``. ``Services.record`` is the one entry point the HTTP layer calls.
"""

from rolebridge.audit.events import HIDDEN, build_event, redact
from rolebridge.audit.query import export_jsonl, iter_events, parse_time
from rolebridge.audit.writer import AuditWriter

__all__ = ["HIDDEN", "AuditWriter", "build_event", "export_jsonl", "iter_events", "parse_time", "redact"]
