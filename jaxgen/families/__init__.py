"""Model families. Each module registers its methods with `jaxgen.registry`."""
