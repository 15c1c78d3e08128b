"""The `edgegw` command: run a stage, watch alerts and status, set config."""
