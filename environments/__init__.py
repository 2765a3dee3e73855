"""Environment files (one TOML file per environment), their schema and loader."""
