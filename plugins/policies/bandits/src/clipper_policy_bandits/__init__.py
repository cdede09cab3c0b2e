"""clipper-policy-bandits: select one model per query and learn from feedback which serves each user best."""

from clipper_policy_bandits.policies import UCB1, EpsilonGreedy, Exp3, LinUCB, ThompsonBernoulli, ThompsonGaussian

__all__ = ["UCB1", "EpsilonGreedy", "Exp3", "LinUCB", "ThompsonBernoulli", "ThompsonGaussian"]
