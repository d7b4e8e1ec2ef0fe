"""The pure core: pipe and module specs, planning, hashing, command lines. No I/O."""
