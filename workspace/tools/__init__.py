"""The model-callable tools of a workspace (registry.py lists them; each module registers its own)."""
