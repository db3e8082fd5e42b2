"""Azure OpenAI chat completions: deployment URLs and the Azure AI Foundry /models form. The body and stream are
OpenAI's; only the URL and the credential header differ."""
