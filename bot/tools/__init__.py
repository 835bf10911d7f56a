"""Tools on top of the domain: the CLI, the checker, the simulator, the benchmark."""
