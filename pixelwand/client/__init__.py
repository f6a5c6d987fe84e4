"""Client-side helpers for talking to a Pixel Wand server over HTTP (httpx only)."""
