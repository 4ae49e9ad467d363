"""``aiguillage bench``: the hub against a raw aiokafka copy loop (the limit) and a naive Faust copy (the peer).

Each contender runs as its own subprocess on the same broker, on fresh topics,
fed the same generated Signalements; the bench process only produces, consumes
the output and measures (see :mod:`aiguillage.bench.run`).
"""
