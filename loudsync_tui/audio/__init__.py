"""Audio I/O adapters: files in, encoded frames over the wire, sound out."""
