"""The evolutionary Optuna sampler (regularised evolution, DisWOT Algorithm 1) and its mutations."""
