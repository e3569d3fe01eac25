"""Image bytes: format sniffing (and, with the engine, decoding)."""
