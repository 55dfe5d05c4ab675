"""The bare nameko service the RPC figures are measured against: ``echo_rpc``."""

from nameko.rpc import rpc


class EchoService:
    name = "echo"

    @rpc
    def echo(self, x):
        return x
