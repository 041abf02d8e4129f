"""seqkit.gcn: graph convolutional networks (Kipf & Welling 2017) for node classification.

A sibling package: it uses seqkit's Trainer, recipes, run directory and export, and imports only
seqkit's public names. ``models`` holds the network, ``data`` the graphs (Planetoid files through
a restricted unpickler, networkx's karate club), ``task`` the full-batch training task and
``family`` the ``gcn`` recipe task.
"""
