"""Research tools outside the pipeline.

``oracle`` trains the classifier head on true perception from the sample
world's truth (which regions hold which objects, which sentences mention
them), to measure how much of a shortfall is perception and how much is
the head.
"""
