"""Independent plain-Python reference implementations (oracles) of the shared payment schemes."""
