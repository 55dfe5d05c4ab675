"""The HTTP gateway (网关): the JSON API, the verification page and the web site (its operator
dashboard at /#/dashboard)."""
