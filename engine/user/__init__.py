"""What belongs to the user: settings (and the cache they configure), session files and exports
(figures and data files with their provenance)."""
