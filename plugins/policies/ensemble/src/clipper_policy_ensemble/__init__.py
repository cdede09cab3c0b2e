"""clipper-policy-ensemble: combine several models' outputs, straggler-tolerant, optionally learned."""

from clipper_policy_ensemble.base import Ensemble
from clipper_policy_ensemble.exp4 import Exp4
from clipper_policy_ensemble.k_agree import KAgree
from clipper_policy_ensemble.mean import Mean
from clipper_policy_ensemble.vote import MajorityVote, WeightedVote

__all__ = ["Ensemble", "Exp4", "KAgree", "MajorityVote", "Mean", "WeightedVote"]
