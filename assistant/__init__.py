"""KI-Rollen-Assistent: cited answers about AI roles and the company's AI policies.

The flow, one module each: documents -> chunking -> embeddings/index -> retrieval -> answer,
wired together in pipeline; cli and the web app only call the pipeline.
"""
