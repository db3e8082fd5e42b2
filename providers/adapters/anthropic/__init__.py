"""Anthropic Messages API upstreams: Anthropic, Azure AI Foundry's /anthropic/v1/messages, compatible gateways."""
