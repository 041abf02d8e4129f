"""seqkit.gcn: graph convolutional networks (Kipf & Welling 2017) for node classification.

A sibling package: it uses seqkit's Trainer, recipes, run directory and export, and imports only
seqkit's public names. ``models`` holds the network and its ``gcn`` model builder, ``data`` the
graphs (Planetoid files through a restricted unpickler, networkx's karate club) and the ``graph``
data module, ``task`` the full-batch ``node-classification`` task; :mod:`seqkit.parts.registry`
names them.
"""
