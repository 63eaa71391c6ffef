"""The DisWOT pipeline: CLI, objective and proxies, data, teachers, search, distillation, ranking."""
