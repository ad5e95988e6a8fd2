"""collectord's built-in source plugins (installed as the package ``collectord_plugins``).

collectord registers each module itself (:mod:`collectord.plugin.manager`); like a
third-party plugin, each implements ``register_source_plugins`` and imports only from
:mod:`collectord`.
"""
