"""Setup and diagnosis tools: ``grant`` (set up a cross-account role), ``explain`` (why an assume is
refused), ``lint`` (what a trust policy lets in), ``access`` (who can assume what).

They sit on top of the core (STS checks, policy engine, platform naming) and never re-implement
it: explain replays the very checks ``sts/web_identity.py`` makes, grant builds its subject
pattern with ``platform.roles.subject_pattern``.
"""
