"""One Prometheus registry for the whole process, and logging that never prints a secret."""
