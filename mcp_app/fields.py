"""A JSON object stored encrypted (providers.secrets' Fernet): MCP servers' env and headers hold credentials."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from providers.secrets import PREFIX, secret_decrypt, secret_encrypt


def _as_dict(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValidationError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValidationError("expected a JSON object of names to string values")
    return {str(key): str(item) for key, item in value.items()}


class EncryptedJSONField(models.TextField):  # type: ignore[type-arg]
    """A dict of str -> str; the database holds ``enc1:<Fernet token of the JSON>``, Python code the dict."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> dict[str, str]:
        if not value:
            return {}
        return _as_dict(secret_decrypt(value))

    def to_python(self, value: Any) -> dict[str, str]:
        if isinstance(value, str) and value.startswith(PREFIX):  # loaddata of what value_to_string wrote
            value = secret_decrypt(value)
        return _as_dict(value)

    def get_prep_value(self, value: Any) -> Any:
        mapping = _as_dict(value)
        if not mapping:
            return ""
        return secret_encrypt(json.dumps(mapping, sort_keys=True))

    def value_to_string(self, obj: Any) -> str:
        # dumpdata / serializers: never the plaintext.
        return str(self.get_prep_value(self.value_from_object(obj)))
