"""Autoscaling: a model version's settings (:mod:`~clipper_core.autoscaling.config`) and the pure decision
function the management server's autoscaler applies every tick (:mod:`~clipper_core.autoscaling.decision`)."""
