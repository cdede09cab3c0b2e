"""The query path, protocol-neutral: the snapshot of apps and models, predict and feedback, model runtimes,
queues, batch sizing, admission and the SLO wait. Frontends (Clipper REST, V2) are adapters over it."""
