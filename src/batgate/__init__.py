"""batgate: a self-hosted messaging gateway that speaks the SMSBAT REST API."""

__version__ = "0.1.0"
