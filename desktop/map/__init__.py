"""The map view and its controls: points, colours, density, selection tools, the filter
bar and the sweep dialog."""
