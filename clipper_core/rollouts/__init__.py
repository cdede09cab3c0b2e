"""Safe rollouts of a model's new version (docs/rollouts.md): the settings (:mod:`.settings`), the record the
store keeps (:mod:`.record`), the step figures the frontends count (:mod:`.figures`), the sticky split
(:mod:`.split`) and the controller's pure decision function (:mod:`.decision`)."""
