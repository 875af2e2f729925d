"""Who is who: the host's certificate and fingerprint, pinned hosts, PINs."""
