"""The sample world: a generated corpus with known truth, in the real formats.

``scenes`` draws random scenes of coloured shapes and holds the label
rules (which sentences mention which object, and the CMI and SC they
imply); ``world`` renders the scenes, writes the texts about them and
stores everything as a Wikipedia dump, a BBC folder and a COCO captions
file, so that the pipeline runs end to end on it with the truth beside it
(``scenes.jsonl``). It is a test bench: nothing in a model or its training
reads it.
"""
