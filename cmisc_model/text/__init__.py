"""Text as the model reads it.

``sentences`` splits prose into sentences, ``spelling`` maps British to
American spellings (the BBC corpus), and ``normalise`` turns a pair's text
blocks into the lower-cased, tokenised, length-capped sentences that the
vocabulary, training and inference all share (``TextConfig``, ``TextNormaliser``).
"""
