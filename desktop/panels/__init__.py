"""Side panels: the table, neighbours, bookmarks, jobs and the log."""
