"""Readers of the real source formats, each giving rows of the PAIRS schema.

Simple English Wikipedia as an XML dump (``wiki_dump``, parsing the wikitext
in ``wikitext``), through the MediaWiki Action API (``mediawiki_api``) or as
rendered HTML (``wiki_html``); the BBC News corpus folder (``bbc``); COCO
captions (``coco``). ``http`` is the polite, rate-limited, retrying client
that every network read goes through.
"""
