"""The user's side: ``ClipperConnection`` (Clipper's admin API) and the HTTP client of the management API.

Importing it does not import aiohttp: it runs in notebooks and scripts next to the user's models."""
