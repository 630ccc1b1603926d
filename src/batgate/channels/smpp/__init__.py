"""SMPP 3.4: batgate's own asyncio client for carriers' SMSCs (see docs/smpp.md).

`pdu` (the wire format), `text` (alphabets and parts), `receipts` (reading
delivery receipts), `session` (one connection), `connector` (the connector).
"""
