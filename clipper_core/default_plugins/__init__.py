"""Built-in plugins, registered exactly like external ones (each module has its ``@hookimpl``s).

Which modules they are, and under which plugin names (usable in ``CLIPPER_DISABLE_PLUGINS``), is
:data:`clipper_core.plugins.DEFAULT_PLUGINS`; a module is imported only when a plugin manager registers it.
"""
