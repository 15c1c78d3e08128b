"""deployer: runs requested analytics as containers on the gateway."""
