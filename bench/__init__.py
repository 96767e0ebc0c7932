"""The benchmark: our websocket worker beside Django Channels and a bare gevent-websocket server.

`make bench` (or `make bench QUICK=1`) runs `python -m bench.run`; docs/performance.md explains it.
"""
