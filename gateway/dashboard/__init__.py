"""The staff dashboard (/dashboard/) and the user's own page (/me/): usage, spend, budgets, health as server-side
SVG charts (no JavaScript chart library, nothing from a CDN)."""
