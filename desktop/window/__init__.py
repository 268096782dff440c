"""The main window and what hangs off it: menus, dialogs, sessions and exports."""
