"""Schema postprocessing: every operation documents the errors it can answer.

Views list their own error responses (apps.common.api.errors); this hook adds the
ones every endpoint can give (401, 403, 429; 404 where the path names an object;
400 where there is input) to operations that do not list them, so older views
(ingestion) and the contract tests agree with what the server really sends.
"""

from typing import Any

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    "400": "Invalid request",
    "401": "Not authenticated",
    "403": "Not allowed for this role",
    "404": "Not found, or outside the caller's scope",
    "429": "Throttled",
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            wanted = ["401", "403", "429"]
            parameters = {p.get("name") for p in operation.get("parameters", [])}
            # A path naming an object, or a page past the end of a list: 404.
            if "{" in path or "page" in parameters:
                wanted.append("404")
            if operation.get("parameters") or operation.get("requestBody"):
                wanted.append("400")
            responses = operation.setdefault("responses", {})
            for status in wanted:
                responses.setdefault(
                    status,
                    {
                        "description": _DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": _ERROR_REF}},
                    },
                )
    return result
