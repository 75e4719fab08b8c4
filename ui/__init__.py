"""The Gradio demo: `python -m ui`."""
