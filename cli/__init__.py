"""The ``kaowu`` operator command line (运维命令行): status, event logs, rebuilds,
candidate histories, session loading, spot checks, scores, staff accounts, dead letters
and a demo season. Entry point: ``cli.main:app``."""
