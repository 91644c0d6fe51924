"""The web layer: FastAPI app with JSON API and the Gradio chat. Formatting only, no retrieval logic."""
