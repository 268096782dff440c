"""The runtime every long task shares: jobs with progress and cancel tokens, isolated child
processes, and atomic file writes."""
