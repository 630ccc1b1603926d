"""A generic HTTP SMS carrier: `kind = "http"`, and its presets (docs/http-carriers.md)."""
