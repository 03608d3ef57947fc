"""Google Gemini ``generateContent``, translated both ways."""
