"""Modal questions: confirmations and one-line inputs."""
