"""Using trained models: ``predict`` gives CMI and SC for an image and a text
or for a pairs file; ``embed`` writes the autoencoder's article embeddings.
"""
