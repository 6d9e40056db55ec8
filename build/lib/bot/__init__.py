"""The running program: CLI, configuration, wiring, channels to the outside world."""
