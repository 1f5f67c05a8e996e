"""The API's settings: Django REST framework's, and drf-spectacular's (what /api/schema/
says about the API as a whole).

Plain data, imported by cloud.settings; the code that shapes each operation (error
answers, authentication) is cloud.schema.
"""

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "portal.api_errors.exception_handler",
    # Every list is paginated: {"count", "next", "previous", "results"}.
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "cloud.schema.PortalSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "K3s cloud portal API",
    "DESCRIPTION": (
        "Managed K3s clusters: launch, watch, scale and delete clusters, their networks and "
        "firewalls. Authenticate with `Authorization: Bearer <token>` (create a token on the "
        "portal's Tokens page). Every error is JSON with a stable `code`; a 400 names each "
        "bad field with its reasons. Lists are paginated: follow `next`."
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `status`: each choice set gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "ClusterStatus": "provisioning.states.ClusterStatus",
        "NodeStatus": "provisioning.states.NodeStatus",
        "DeliveryStatus": "observability.webhooks.models.DeliveryStatus",
        "ReportState": "provisioning.phone_home.STATES",
    },
    # Served by the portal itself (drf-spectacular-sidecar): the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "cloud.schema.error_components",
        "cloud.schema.database_ranges_dropped",
        "cloud.schema.staff_paths_for_staff",
    ],
}
