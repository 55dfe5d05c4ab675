"""The HTTP gateway (网关): the JSON API, the verification page and the operator dashboard."""
