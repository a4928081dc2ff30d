"""Metadata: the metadata database (MDDB) loaded from received files.

``load`` reads completed batches from batches/, ``extraction`` turns a record
into index rows, ``index`` writes them, ``combined_diagnostic`` reports the load;
``identifiers`` and ``text_keys`` normalise ISSNs, ISBNs, titles and names the
same way for the index and for the query matcher that reads it.

May import: the foundations, ``accounts``, ``handles``, ``deposit`` (files and
the hardened parser), ``notify`` and ``runtime``. Never the entry points or ``web``.
"""
