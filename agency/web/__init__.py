"""HTTP blueprints: thin adapters from requests to the agency's services."""
