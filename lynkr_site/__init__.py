"""Lynkr: a self-hosted gateway that serves the Anthropic Messages API over many model backends."""

from lynkr_site.celery import app as celery_app

__all__ = ["celery_app"]
