"""Performance studies: speed (time, passes, memory, lower bounds), network FLOPs, reduced precision."""
