"""An inbound text: what it asks (intents), crisis language, answers, what to reply."""
