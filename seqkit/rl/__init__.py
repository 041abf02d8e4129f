"""seqkit.rl: reinforcement learning on the one Trainer (tabular Q-learning and DQN).

Modules: :mod:`~seqkit.rl.models` (the Q-table and Q-network, and their ``q-table`` and
``q-network`` model builders), :mod:`~seqkit.rl.envs` (gymnasium environments, the resumable
runner and the ``environment`` data module), :mod:`~seqkit.rl.task` (the ``rl`` task: tabular
Q-learning and DQN drawing batches from the environment, greedy evaluation),
:mod:`~seqkit.rl.replay` and :mod:`~seqkit.rl.play`. :mod:`seqkit.parts.registry` names them.
"""
