"""Session rules without I/O: inputs and a clock in, effects out."""
