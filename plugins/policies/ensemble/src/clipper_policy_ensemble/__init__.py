"""clipper-policy-ensemble: combine several models' outputs, straggler-tolerant, optionally learned."""

from clipper_policy_ensemble.policies import Exp4, KAgree, MajorityVote, Mean, WeightedVote

__all__ = ["Exp4", "KAgree", "MajorityVote", "Mean", "WeightedVote"]
