"""Training the two networks.

``autoencoder`` pre-trains the article encoder (the paper's reconstruction
autoencoder, plus image-text matching) and ``classifier`` trains the CMI/SC
heads on it over K labelled splits; ``scarcity`` repeats that at shares of
the labels. Beneath them: ``data`` (datasets, length-bucketed batches),
``grounding`` (which region each mention looks at), ``optim``,
``checkpoint`` (atomic, resumable), ``determinism`` and ``runtime``
(devices, torchrun ranks, mixed precision).
"""
