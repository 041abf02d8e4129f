"""seqkit.rl: reinforcement learning on the one Trainer (tabular Q-learning and DQN)."""
