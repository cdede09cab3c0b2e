"""Multi-tenancy (docs/tenancy.md): an application's limits and priority class and an API key's own limits
(:mod:`.limits`), and API keys: making one, finding its record, checking a secret (:mod:`.keys`). The records
themselves (``Application``'s ``require_api_key``, ``priority`` and ``limits``; ``ApiKey``) are the state store's."""
