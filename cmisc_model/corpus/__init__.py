"""From pairs to the training corpus.

``images`` fetches, checks and stores the images of a pairs file;
``annotations`` imports and validates CMI/SC labels (project and 2017
formats) and splits labelled pairs; ``assemble`` unions the sources and
splits them by document; ``vocab`` builds the vocabulary and Word2Vec
model from the training split.
"""
