"""The micro-intervention care model: programs, rules, timing, decisions, hub, narrative."""
