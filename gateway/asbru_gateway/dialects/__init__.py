"""Client dialects (ingress): how each client API's requests become core requests, and back."""
