"""HTTP routes, one module per resource. Routes are thin: parse, call a service, answer."""
