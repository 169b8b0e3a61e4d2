"""Privacy and data rights: pseudonymised ids, erasure, encryption at rest, DP training.

* :mod:`lgrec.privacy.pseudonym`: user ids replaced by keyed hashes (HMAC-SHA256) at ingest;
* :mod:`lgrec.privacy.cli`: the ``--pseudonymize`` flags and ``lgrec forget``.

See ``docs/privacy.md`` for what each control covers, what it costs and the threat model.
"""
