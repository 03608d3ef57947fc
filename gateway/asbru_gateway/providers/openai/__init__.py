"""OpenAI and the OpenAI-compatible family (Groq, Mistral, vLLM, Ollama, ...): one translator."""
