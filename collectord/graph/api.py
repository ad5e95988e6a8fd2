"""Which API a plugin speaks, and the settings a source of it is bound with.

A plugin declares a :class:`GraphApi` (``SourcePlugin.api``): where the API lives, its
version, whether it has batch requests and ``appsecret_proof``, and whose app its tokens
belong to. :func:`settings_for` merges that declaration with the user's ``[graph]`` and
``[source.graph]`` tables into the :class:`~collectord.config.types.GraphConfig` the Graph
client binds the source with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from collectord.config.types import GraphConfig

_DEFAULTS = GraphConfig()

#: The keys that belong to an API (where it is, its version) or to an app (its id and
#: secret). A ``[graph]`` value of one of them applies only to plugins of the same ``app``;
#: the other keys (``timeout``, ``max_concurrency``, ``usage_ceiling``) apply to every
#: source.
API_KEYS: frozenset[str] = frozenset({"base_url", "version"})
APP_KEYS: frozenset[str] = frozenset({"app_id", "app_secret"})


@dataclass(frozen=True)
class GraphApi:
    """The API a plugin speaks.

    ``base_url`` and ``version`` say where requests go (``{base_url}/{version}/{path}``);
    ``batching`` whether the API has batch requests (without them, several calls go out as
    one GET each); ``appsecret_proof`` whether requests carry the proof when an app secret
    is known; ``app`` names the app family its tokens belong to: ``[graph]`` settings the
    user made (``base_url``, ``version``, ``app_id``, ``app_secret``) apply only to plugins
    of the ``facebook`` app, the one ``[graph]`` describes.
    """

    base_url: str = _DEFAULTS.base_url
    version: str = _DEFAULTS.version
    batching: bool = True
    appsecret_proof: bool = True
    app: str = "facebook"

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"GraphApi.base_url: expected an http(s) URL, got {self.base_url!r}")
        if not self.version.startswith("v"):
            raise ValueError(
                f"GraphApi.version: expected a version such as v26.0, got {self.version!r}"
            )
        if not self.app:
            raise ValueError("GraphApi.app: must name the app the tokens belong to")


#: The Facebook Graph API, as the built-in plugins speak it.
FACEBOOK = GraphApi()
#: The Instagram API with Instagram Login (docs/meta-facts.md 5.1, 10.9): its own host, no
#: batch requests, no ``appsecret_proof`` (Meta documents neither there), and tokens of
#: the app's Instagram side (``[graph]`` app settings and rate budget do not apply).
INSTAGRAM_LOGIN = GraphApi(
    base_url="https://graph.instagram.com", batching=False, appsecret_proof=False, app="instagram"
)
#: The app ``[graph]`` describes.
GRAPH_APP = FACEBOOK.app


def settings_for(api: GraphApi, graph: GraphConfig) -> GraphConfig:
    """The settings a source of a plugin speaking ``api`` is bound with.

    ``graph`` is the source's merged ``[graph]`` + ``[source.graph]`` settings; its
    ``graph_keys``/``source_keys`` say which keys the user set where. The declaration gives
    ``base_url`` and ``version``; ``[graph]`` values the user set replace them (and give
    ``app_id``/``app_secret``) only when ``api.app`` is the app ``[graph]`` describes;
    ``[source.graph]`` values always apply. A plugin that does not declare
    ``appsecret_proof`` never gets an app secret, so never sends a proof.
    """
    same_app = api.app == GRAPH_APP
    values: dict[str, Any] = {"base_url": api.base_url, "version": api.version}
    if not same_app:
        values |= {"app_id": None, "app_secret": None}
    for key in API_KEYS | APP_KEYS:
        if key in graph.source_keys or (same_app and key in graph.graph_keys):
            values[key] = getattr(graph, key)
    if not api.appsecret_proof:
        values["app_secret"] = None
    return dataclasses.replace(graph, **values)


def pointed_at(graph: GraphConfig, **values: Any) -> GraphConfig:
    """``graph`` with ``values`` set as if in ``[source.graph]`` (they apply to any
    plugin): how ``--demo`` points every source at the simulator."""
    keys = graph.source_keys | frozenset(values)
    return dataclasses.replace(graph, **values, source_keys=keys)
