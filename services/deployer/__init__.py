"""deployer: analytics packaged as container images, deployed, stopped and
removed at run time through the Docker Engine API, from a local registry."""
