"""Upload: the registrant's side — a client that deposits files or folders of batches and collects every outcome.

Speaks the plain API (``/v1/deposits``) or a Crossref-style servlet
(``/servlet/deposit`` + ``/servlet/submissionDownload``), so the same tool works
against this agency or any Crossref-compatible endpoint. http.client and lxml
only: it runs wherever the ``agency`` command is installed.

May import: nothing else of agency (it talks to a server over HTTP, like any client).
"""
