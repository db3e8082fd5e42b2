"""The repository index, pure parts: crawl, language detection, extraction, import resolution, project signals.

Nothing here imports Django; the service that writes the index is ``workspace.indexer``.
"""
