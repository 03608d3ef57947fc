"""Routing: model name -> ordered provider/model candidates; keys, retries, fallbacks."""
