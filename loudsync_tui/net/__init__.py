"""Thin adapters between sockets (WebSocket, mDNS) and the sans-I/O cores and the store."""
