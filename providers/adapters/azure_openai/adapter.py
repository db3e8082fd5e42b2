"""Azure OpenAI: the OpenAI chat adapter with Azure's URL forms."""

from __future__ import annotations

from providers.adapters.azure_openai.wire import azure_chat_url
from providers.adapters.openai_chat.adapter import OpenAIChatAdapter
from providers.routing import Route


class AzureOpenAIAdapter(OpenAIChatAdapter):
    kind = "azure_openai"

    def url(self, route: Route) -> str | None:
        provider = route.provider
        deployment = str(provider.options.get("deployment") or route.upstream_model)
        api_version = str(provider.options.get("api_version") or "")  # empty: the default of the URL's form
        return azure_chat_url(provider.base_url, deployment=deployment, api_version=api_version)
