"""The networks, as torch.nn modules.

``encoders`` holds the article encoder (InceptionV3 image CNN, word
embeddings, the hierarchical sentence and article LSTMs), ``decoders`` the
text and image decoders, ``autoencoder`` joins them for pre-training and
``classifier`` puts the CMI and SC heads on the encoder; ``config`` holds
their dataclass hyperparameters (the ``autoencoder.model`` and
``classifier.model`` sections of params.yaml).
"""
