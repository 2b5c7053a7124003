"""The model runtime the generated pipelines call: train helpers, gate, serve, drift."""
