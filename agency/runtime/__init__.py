"""Runtime: background work that knows no domain.

``worker`` claims submissions, holds leases and runs slices through the runners
it is handed; ``scheduling`` runs periodic jobs under a database lease.

May import: the foundations only.
"""
