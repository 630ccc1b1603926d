"""An SMSBAT-compatible API as a carrier: `kind = "smsbat"` (SPEC §9, docs/carriers.md)."""
