"""One environment of the Airflow platform: read the stack's config, build the platform, export its outputs."""

import pulumi

from components.config import load
from components.platform import Platform

config = load()
platform = Platform(config.name, config)
for key, value in platform.outputs().items():
    pulumi.export(key, value)
