"""clipper-policy-bandits: select one model per query and learn from feedback which serves each user best."""

from clipper_core.policies.rewards import reward
from clipper_policy_bandits.base import Bandit
from clipper_policy_bandits.epsilon_greedy import EpsilonGreedy
from clipper_policy_bandits.exp3 import Exp3
from clipper_policy_bandits.linucb import LinUCB
from clipper_policy_bandits.thompson import ThompsonBernoulli, ThompsonGaussian
from clipper_policy_bandits.ucb1 import UCB1

__all__ = ["UCB1", "Bandit", "EpsilonGreedy", "Exp3", "LinUCB", "ThompsonBernoulli", "ThompsonGaussian", "reward"]
