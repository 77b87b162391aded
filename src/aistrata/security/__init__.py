"""Security and governance beyond the guard policies: roles and JWT bearer tokens (perimeter),
payload encryption, masking and data residency (data protection), the hash-chained audit log
and the compliance report (audit), kill switches and the read-only mode (human override).

Modules are imported where they are used: `roles` is imported by `gateway.auth`, so this
package must not import the gateway at import time.
"""
