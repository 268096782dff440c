"""What belongs to the user: settings, per-user paths, session files and exports
(figures and data with their provenance)."""
