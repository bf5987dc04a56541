"""CDK infrastructure of the quota monitor."""
