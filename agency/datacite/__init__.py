"""DataCite: kernel-4 metadata records and the DOI states of DataCite's MDS API.

``kernel4`` reads and validates DataCite Metadata Schema kernel-4 XML (hardened
parse, our XSD in ``schemas/datacite/``, identifier equal to the DOI);
``states`` keeps the draft / registered / findable life of a DOI registered
through the MDS API, writes registered and findable DOIs to the handle store
last-write-wins, and refuses to touch DOIs managed through the Crossref
interface (and lets an operator convert a DOI from one to the other);
``index`` puts findable records in the metadata database (citations, queries).

May import: the foundations (config, db, models), ``accounts``, ``handles``,
``admin`` (audit trail), ``deposit.validation`` (the hardened parser) and
``metadata`` (its text keys).
Never ``web``, ``cli``, ``app``, ``services``, ``wsgi``.
"""
