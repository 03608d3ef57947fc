"""The typed core that no client dialect owns: requests, replies, stream items, usage, identity."""
