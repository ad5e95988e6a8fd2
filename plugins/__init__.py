"""collectord's built-in source plugins (installed as the package ``collectord_plugins``).

Each module registers itself through the ``collectord.plugins`` entry-point group, exactly
as a third-party plugin would, and imports only from :mod:`collectord`.
"""
