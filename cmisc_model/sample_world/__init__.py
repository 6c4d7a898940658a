"""The sample world: a generated corpus with known truth, in the real formats.

``scenes`` draws random scenes of coloured shapes, renders them and holds the
label rules (which sentences mention which object, and the CMI and SC they
imply). ``plans`` decides each pair's (CMI, SC) cell and the mentions that
earn it; ``words`` is the vocabulary and ``texts`` writes the Wikipedia
articles, BBC stories and COCO captions about the scenes; ``formats`` writes
the on-disk formats (MediaWiki XML dump, BBC folder, COCO json). ``world`` puts
it together (``cmisc sample``): it stores everything as a Wikipedia dump, a
BBC folder and a COCO captions file, so that the pipeline runs end to end on
it with the truth beside it (``scenes.jsonl``). It is a test bench: nothing in
a model or its training reads it.
"""
