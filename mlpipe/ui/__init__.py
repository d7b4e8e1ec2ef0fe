"""`ml ui`: the local web application (stdlib HTTP server, one page, a JSON API)."""
