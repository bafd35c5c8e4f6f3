"""What a plugin is: the hooks a package implements, the specs it returns, the registry
that discovers them, and the base classes, parameters, conditions and capabilities a
plugin is written against. Plugin authors import these through `arbench` itself."""
