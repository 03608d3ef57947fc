"""Built-in plugins, one module each, registered by type id in ``registry``."""
