"""Work the window hands to the engine: the bridge that turns job events into Qt signals."""
