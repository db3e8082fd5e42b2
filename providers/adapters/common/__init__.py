"""Pure pieces shared by the translating adapters (no Django, no httpx)."""
