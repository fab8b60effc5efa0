/// The frontend's API as an OpenAPI 3.1 document, served at `GET /openapi.json` (open: no token).
/// Every route is described: its parameters, bodies, answers (errors as `{"error", "detail"}`), the
/// token scope it needs, and the WebSocket messages of `/ws` (in `info.description` and the
/// `WebSocket*` schemas). Two extensions: `x-path-aliases` (paths answered as another documented
/// path, such as `/process/`) and `x-unrouted-responses` (answers to a request that reaches no
/// operation: 404, 405 with `Allow`, and the checks made before routing). `Tests/openapi_check.py`
/// checks real answers against it.
///
///     connection.respond(status: 200, body: OpenAPIDocument.json, contentType: OpenAPIDocument.contentType)
public enum OpenAPIDocument {
    /// The media type the document is served as.
    public static let contentType = "application/json"

    /// The document's JSON text.
    public static let json = #"""
        {
          "openapi": "3.1.0",
          "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
          "info": {
            "title": "Celeris frontend",
            "version": "0.2.0",
            "summary": "Send Celery tasks, follow their state, revoke them, manage periodic tasks.",
            "description": "The HTTP and WebSocket API of celeris-frontend. It speaks Celery's Redis protocol, so Celeris and Python Celery workers run what it sends.\n\nAuthentication: when the frontend runs with `--auth-secret`, every route except `/health`, `/metrics`, `/openapi.json` and `/` needs a bearer token (`Authorization: Bearer <token>`, or `?token=<token>` where a header cannot be set, as for browser WebSockets) whose scopes include the route's scope (`*` allows every scope). Without `--auth-secret` no route needs a token.\n\nErrors are JSON `{\"error\": code, \"detail\": text}`. A request that reaches no operation is answered as `x-unrouted-responses` says: 404 for an unknown path, 405 (with `Allow`) for a known path and another method. HEAD is answered as GET without a body.\n\nWebSocket (`GET /ws`): after the upgrade a client sends text messages `{\"subscribe\": [task ids]}` and `{\"unsubscribe\": [task ids]}` or `{\"unsubscribe\": \"*\"}` (schemas `WebSocketSubscribe`, `WebSocketUnsubscribe`). A subscribed task's states arrive as `WebSocketTaskUpdate`: first its current state (PENDING when it has none), then every later state in order, each once, nothing after a final state (SUCCESS, FAILURE, REVOKED). A client with no subscriptions gets the `task_status` broadcast (`WebSocketStatusEvent`) unless the frontend runs with `--no-firehose` or its token lacks `ws:all`. A refused command is answered with `WebSocketError`. Close codes: 1001 idle or server shutting down, 1007 text not UTF-8, 1008 token expired or a client stuck over the soft output limit, 1009 message too big, 1013 output over the hard limit."
          },
          "servers": [{"url": "/"}],
          "tags": [
            {"name": "tasks", "description": "Send, revoke and follow tasks."},
            {"name": "schedule", "description": "Periodic tasks run by celeris-beat."},
            {"name": "operations", "description": "Health, metrics, statistics, the dashboard and this document."}
          ],
          "paths": {
            "/tasks": {
              "post": {
                "tags": ["tasks"],
                "operationId": "sendTask",
                "summary": "Send a task",
                "description": "Queue a Celery task message (protocol 2) and answer its id once Redis holds it. With no body it sends the tutorial's `create_task(task_length)`. Send options come from the JSON body or the query string (the body wins; `link` and `link_error` only in the body). Task names (the linked ones too) must be on the frontend's allow-list (`--allow-task`); a token with `tasks:NAME` scopes may send only those names, and only a token with the whole `tasks` scope (or `*`) may choose a `task_id` (the task's or a link's; else 403: a chosen id could overwrite another task's result). `countdown` and `eta` exclude each other.",
                "security": [{"bearerAuth": ["tasks"]}, {"queryToken": ["tasks"]}],
                "parameters": [
                  {
                    "name": "task_length",
                    "in": "query",
                    "description": "Steps of `create_task` when the body names no arguments (default `--default-task-length`).",
                    "schema": {"type": "integer", "minimum": 0, "maximum": 100000}
                  },
                  {
                    "name": "queue",
                    "in": "query",
                    "description": "As the body's `queue`.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200}
                  },
                  {
                    "name": "priority",
                    "in": "query",
                    "description": "As the body's `priority`.",
                    "schema": {"type": "integer", "minimum": 0, "maximum": 255}
                  },
                  {"$ref": "#/components/parameters/countdown"},
                  {"$ref": "#/components/parameters/eta"},
                  {"$ref": "#/components/parameters/expires"},
                  {"$ref": "#/components/parameters/ignoreResult"},
                  {"$ref": "#/components/parameters/taskIdOption"}
                ],
                "requestBody": {
                  "required": false,
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskRequest"}}}
                },
                "responses": {
                  "200": {
                    "description": "The task is queued.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskId"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                  "422": {"$ref": "#/components/responses/Unprocessable"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/EnqueueUnavailable"}
                }
              }
            },
            "/tasks/{task_id}": {
              "parameters": [{"$ref": "#/components/parameters/taskId"}],
              "delete": {
                "tags": ["tasks"],
                "operationId": "revokeTask",
                "summary": "Revoke a task",
                "description": "Broadcast Celery's `revoke` control command, which Celeris and Python Celery workers honour: a task not started yet is skipped (its state becomes REVOKED); with `terminate` a running one is stopped with `signal`. `terminate` and `signal` come from the query or a JSON body (the body wins). Revoking reaches any client's task, so it needs the whole `tasks` scope (or `*`): a token with only `tasks:NAME` scopes is refused (403 `forbidden`).",
                "security": [{"bearerAuth": ["tasks"]}, {"queryToken": ["tasks"]}],
                "parameters": [{"$ref": "#/components/parameters/terminate"}, {"$ref": "#/components/parameters/signal"}],
                "requestBody": {
                  "required": false,
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RevokeRequest"}}}
                },
                "responses": {
                  "202": {
                    "description": "The revoke is broadcast.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RevokeResult"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                  "422": {"$ref": "#/components/responses/Unprocessable"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/tasks/{task_id}/revoke": {
              "parameters": [{"$ref": "#/components/parameters/taskId"}],
              "post": {
                "tags": ["tasks"],
                "operationId": "revokeTaskByPost",
                "summary": "Revoke a task (POST form)",
                "description": "As `DELETE /tasks/{task_id}`; `terminate` and `signal` may also come in a JSON body. Needs the whole `tasks` scope (or `*`); `tasks:NAME` is refused (403).",
                "security": [{"bearerAuth": ["tasks"]}, {"queryToken": ["tasks"]}],
                "parameters": [{"$ref": "#/components/parameters/terminate"}, {"$ref": "#/components/parameters/signal"}],
                "requestBody": {
                  "required": false,
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RevokeRequest"}}}
                },
                "responses": {
                  "202": {
                    "description": "The revoke is broadcast.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RevokeResult"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                  "422": {"$ref": "#/components/responses/Unprocessable"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/status/{task_id}": {
              "parameters": [{"$ref": "#/components/parameters/taskId"}],
              "get": {
                "tags": ["tasks"],
                "operationId": "taskStatus",
                "summary": "A task's state",
                "description": "The task's state as the result backend holds it (PENDING when there is no record yet). With `wait`, the answer comes as soon as the task is in a final state (SUCCESS, FAILURE, REVOKED), or after `wait` seconds with its state then. A record with children (groups, chains, `/process` workflows) lists them one level deep.",
                "security": [{"bearerAuth": ["status"]}, {"queryToken": ["status"]}],
                "parameters": [
                  {
                    "name": "wait",
                    "in": "query",
                    "description": "Seconds to wait for a final state (long poll).",
                    "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 60}
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The task's state.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskStatus"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "422": {"$ref": "#/components/responses/Unprocessable"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/process": {
              "post": {
                "tags": ["tasks"],
                "operationId": "processDocuments",
                "summary": "Start the document workflow",
                "description": "Queue `fetch_documents_task(blob_path, process=True, threshold=t)`, the document workflow whose id `GET /status/{task_id}` follows to the comparison. `blob_path` and `threshold` come from the query or a JSON body (the body wins). Also served at `/process/`.",
                "security": [{"bearerAuth": ["process"]}, {"queryToken": ["process"]}],
                "parameters": [
                  {"name": "blob_path", "in": "query", "schema": {"type": "string", "minLength": 1}},
                  {
                    "name": "threshold",
                    "in": "query",
                    "schema": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}
                  }
                ],
                "requestBody": {
                  "required": false,
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProcessRequest"}}}
                },
                "responses": {
                  "200": {
                    "description": "The workflow is queued.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskId"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                  "422": {"$ref": "#/components/responses/Unprocessable"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/EnqueueUnavailable"}
                }
              }
            },
            "/schedule": {
              "get": {
                "tags": ["schedule"],
                "operationId": "listSchedule",
                "summary": "Periodic tasks",
                "description": "The leading celeris-beat scheduler, the schedulers seen, and every entry (from schedule files and run-time entries) with its run state. Times are ISO 8601 UTC, null when not known.",
                "security": [{"bearerAuth": ["schedule"]}, {"queryToken": ["schedule"]}],
                "responses": {
                  "200": {
                    "description": "The schedule.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Schedule"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/schedule/{name}": {
              "parameters": [
                {
                  "name": "name",
                  "in": "path",
                  "required": true,
                  "description": "The entry's name: 1 to 200 UTF-8 bytes after percent-decoding, no `/`.",
                  "schema": {"type": "string", "minLength": 1}
                }
              ],
              "put": {
                "tags": ["schedule"],
                "operationId": "putScheduleEntry",
                "summary": "Add or replace a run-time entry",
                "description": "Store a run-time periodic task, checked as a schedule file's entry; the schedulers pick it up at their next reload. Answers the entry as stored (normalized): 201 when it is new, 200 when it replaced one.",
                "security": [{"bearerAuth": ["schedule"]}, {"queryToken": ["schedule"]}],
                "requestBody": {
                  "required": true,
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScheduleEntryInput"}}}
                },
                "responses": {
                  "200": {
                    "description": "An entry was replaced.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScheduleEntry"}}}
                  },
                  "201": {
                    "description": "A new entry.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScheduleEntry"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              },
              "delete": {
                "tags": ["schedule"],
                "operationId": "deleteScheduleEntry",
                "summary": "Remove a run-time entry",
                "security": [{"bearerAuth": ["schedule"]}, {"queryToken": ["schedule"]}],
                "responses": {
                  "204": {"description": "The entry is removed."},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/stats": {
              "get": {
                "tags": ["operations"],
                "operationId": "stats",
                "summary": "Queues, throughput and workers",
                "description": "Queue depths now and over the last 10 minutes, tasks submitted and processed per interval, and the workers online (from Celery's `inspect stats` and `active_queues`, refreshed every `interval` seconds while this route is read).",
                "security": [{"bearerAuth": ["status"]}, {"queryToken": ["status"]}],
                "responses": {
                  "200": {
                    "description": "Statistics.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stats"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/health": {
              "get": {
                "tags": ["operations"],
                "operationId": "health",
                "summary": "Liveness and broker connection",
                "description": "200 while every loop's Redis connections are up, else 503. Open (no token); the `Host` check does not apply.",
                "security": [],
                "responses": {
                  "200": {
                    "description": "Up.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
                  },
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {
                    "description": "Redis unreachable (`Health` with `degraded`), or too many connections (`Error`).",
                    "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
                    "content": {
                      "application/json": {
                        "schema": {"oneOf": [{"$ref": "#/components/schemas/Health"}, {"$ref": "#/components/schemas/Error"}]}
                      }
                    }
                  }
                }
              }
            },
            "/metrics": {
              "get": {
                "tags": ["operations"],
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                  "200": {
                    "description": "Prometheus text exposition format 0.0.4.",
                    "content": {"text/plain": {"schema": {"type": "string"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/ws": {
              "get": {
                "tags": ["tasks"],
                "operationId": "webSocket",
                "summary": "Live task updates (WebSocket)",
                "description": "A WebSocket (RFC 6455) upgrade. Messages are described in the document's description and in the `WebSocket*` schemas. Browsers pass the token as `?token=`; a cross-site `Origin` is refused.",
                "security": [{"bearerAuth": ["ws"]}, {"queryToken": ["ws"]}],
                "parameters": [
                  {"name": "Upgrade", "in": "header", "required": true, "schema": {"const": "websocket"}},
                  {"name": "Sec-WebSocket-Version", "in": "header", "required": true, "schema": {"const": "13"}},
                  {
                    "name": "Sec-WebSocket-Key",
                    "in": "header",
                    "required": true,
                    "schema": {"type": "string", "minLength": 24, "maxLength": 24}
                  }
                ],
                "responses": {
                  "101": {
                    "description": "Switching to the WebSocket protocol.",
                    "headers": {"Sec-WebSocket-Accept": {"required": true, "schema": {"type": "string"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/": {
              "get": {
                "tags": ["operations"],
                "operationId": "dashboard",
                "summary": "The dashboard page",
                "description": "One HTML page (inline CSS and JavaScript, nothing loaded from elsewhere) that uses this API. Open: it holds no data.",
                "security": [],
                "responses": {
                  "200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            },
            "/openapi.json": {
              "get": {
                "tags": ["operations"],
                "operationId": "openAPIDocument",
                "summary": "This document",
                "security": [],
                "responses": {
                  "200": {
                    "description": "The OpenAPI 3.1 document.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object",
                          "required": ["openapi", "info", "paths"],
                          "properties": {"openapi": {"type": "string", "pattern": "^3\\.1\\."}}
                        }
                      }
                    }
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "408": {"$ref": "#/components/responses/RequestTimeout"},
                  "413": {"$ref": "#/components/responses/BodyTooLarge"},
                  "431": {"$ref": "#/components/responses/HeadersTooLarge"},
                  "503": {"$ref": "#/components/responses/Unavailable"}
                }
              }
            }
          },
          "x-path-aliases": {"/process/": "/process", "/index.html": "/"},
          "x-unrouted-responses": {
            "400": {"$ref": "#/components/responses/BadRequest"},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"$ref": "#/components/responses/Forbidden"},
            "404": {"$ref": "#/components/responses/NotFound"},
            "405": {"$ref": "#/components/responses/MethodNotAllowed"},
            "408": {"$ref": "#/components/responses/RequestTimeout"},
            "413": {"$ref": "#/components/responses/BodyTooLarge"},
            "431": {"$ref": "#/components/responses/HeadersTooLarge"},
            "503": {"$ref": "#/components/responses/Unavailable"}
          },
          "components": {
            "securitySchemes": {
              "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "celeris HMAC token",
                "description": "A token made with the frontend's `--auth-secret` (`celeris-frontend --auth-secret S --issue-token NAME --token-scope SCOPES`). Scopes: `tasks` (or `tasks:NAME` for one task name), `process`, `status`, `ws` (`ws:all`: every task's updates), `schedule`, `*` for all."
              },
              "queryToken": {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": "The same token as `?token=`, for clients that cannot set headers (browser WebSockets)."
              }
            },
            "parameters": {
              "taskId": {
                "name": "task_id",
                "in": "path",
                "required": true,
                "description": "A task id: 1 to 255 bytes, no `/`.",
                "schema": {"type": "string", "minLength": 1}
              },
              "countdown": {
                "name": "countdown",
                "in": "query",
                "description": "Seconds from now before a worker may run the task.",
                "schema": {"type": "number", "minimum": 0, "maximum": 3155760000}
              },
              "eta": {
                "name": "eta",
                "in": "query",
                "description": "When a worker may run the task: ISO 8601, or seconds since the epoch.",
                "schema": {"type": "string"}
              },
              "expires": {
                "name": "expires",
                "in": "query",
                "description": "Seconds from now, or an ISO 8601 time, after which the task is not run (stored as REVOKED).",
                "schema": {"type": "string"}
              },
              "ignoreResult": {
                "name": "ignore_result",
                "in": "query",
                "description": "Store no result.",
                "schema": {"type": "boolean"}
              },
              "taskIdOption": {
                "name": "task_id",
                "in": "query",
                "description": "The id to give the task (default: a new UUID).",
                "schema": {"$ref": "#/components/schemas/TaskIdString"}
              },
              "terminate": {
                "name": "terminate",
                "in": "query",
                "description": "Also stop the task if it is running (`true`, `1`, `yes`, `on` or empty; `false`, `0`, `no`, `off`).",
                "schema": {"type": "boolean", "default": false}
              },
              "signal": {
                "name": "signal",
                "in": "query",
                "description": "The signal that stops a running task when `terminate` is true: SIGTERM, SIGKILL, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 or SIGUSR2 (case-insensitive, `SIG` optional).",
                "schema": {"type": "string", "default": "SIGTERM"}
              }
            },
            "headers": {
              "RetryAfter": {"description": "Seconds to wait before retrying.", "schema": {"type": "string", "pattern": "^[0-9]+$"}}
            },
            "responses": {
              "BadRequest": {
                "description": "A malformed request or body (`bad_request`), a `Host` this server does not answer for (`host_not_allowed`), a bad WebSocket handshake (`bad_handshake`), a bad schedule entry or name (`invalid_entry`, `invalid_name`).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "Unauthorized": {
                "description": "No token, or a bad or expired one (`unauthorized`).",
                "headers": {"WWW-Authenticate": {"required": true, "schema": {"type": "string", "pattern": "^Bearer "}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "Forbidden": {
                "description": "The token lacks the route's scope (`forbidden`), a cross-site `Origin` (`origin_not_allowed`), a task or queue not allowed (`task_not_allowed`, `queue_not_allowed`).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "NotFound": {
                "description": "No such route, task id shape, entry, or metrics turned off (`not_found`).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "MethodNotAllowed": {
                "description": "A known path with another method (`method_not_allowed`).",
                "headers": {"Allow": {"required": true, "schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "RequestTimeout": {
                "description": "The request did not arrive within `--header-timeout-ms` (`request_timeout`); the connection closes.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "BodyTooLarge": {
                "description": "The body is over `--max-body-bytes` (`body_too_large`); the connection closes.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "UnsupportedMediaType": {
                "description": "A non-blank body not declared JSON (`unsupported_media_type`).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "Unprocessable": {
                "description": "Well-formed JSON with the wrong shape or values (`invalid_task`, `invalid_workflow`, `invalid_wait`, ...).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "HeadersTooLarge": {
                "description": "The request head is over `--max-header-bytes` (`headers_too_large`); the connection closes.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "Unavailable": {
                "description": "Redis unreachable (`broker_unavailable`), erring (`broker_error`) or too busy (`overloaded`), or too many open connections (`too_many_connections`).",
                "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "EnqueueUnavailable": {
                "description": "Redis unreachable (`broker_unavailable`), erring (`broker_error`) or too busy (`overloaded`), or too many open connections (`too_many_connections`). With durable enqueue (`--durable-enqueue N`, Redis `WAIT N T` after the push): `not_replicated` when fewer than N replicas acknowledged the task within `--durable-timeout-ms` (or the link dropped before `WAIT` answered); the body names the `task_id`, which is in the primary's queue and may be lost on a failover: retry with the same `task_id` to be sure it is queued.",
                "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              }
            },
            "schemas": {
              "Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {
                  "error": {
                    "type": "string",
                    "description": "A stable code such as `not_found`, `invalid_task`, `broker_unavailable`."
                  },
                  "detail": {"type": "string", "description": "What was wrong, for people."},
                  "task_id": {
                    "$ref": "#/components/schemas/TaskIdString",
                    "description": "With `not_replicated`: the task that was pushed but not confirmed on enough replicas."
                  }
                }
              },
              "TaskIdString": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "pattern": "^[^/\\u0000-\\u001f\\u007f]+$",
                "description": "1 to 255 UTF-8 bytes, no `/`, no control characters."
              },
              "TaskId": {
                "type": "object",
                "required": ["task_id"],
                "properties": {"task_id": {"$ref": "#/components/schemas/TaskIdString"}}
              },
              "Signature": {
                "type": "object",
                "description": "A Celery signature as its dict form: the task to send when this one succeeds (`link`, run with the parent's result prepended to `args` unless `immutable`) or fails (`link_error`, run with the failed task's id). Linked tasks pass the same allow-list, scope, queue and argument checks as the task; a task whose arguments the frontend bounds (`create_task`, `add`) may be linked only with `immutable: true` and never as `link_error` (422).",
                "required": ["task"],
                "properties": {
                  "task": {"type": "string", "minLength": 1},
                  "args": {"type": "array"},
                  "kwargs": {"type": "object"},
                  "immutable": {"type": "boolean", "default": false},
                  "options": {
                    "type": "object",
                    "description": "Only these send options, checked as the task's own; any other key (`headers`, `exchange`, …) is refused with 422. `task_id` needs the whole `tasks` scope.",
                    "additionalProperties": false,
                    "properties": {
                      "queue": {"type": ["string", "null"]},
                      "routing_key": {"type": ["string", "null"]},
                      "priority": {"type": ["integer", "null"], "minimum": 0, "maximum": 255},
                      "countdown": {"type": ["number", "null"], "minimum": 0, "maximum": 3155760000},
                      "eta": {"type": ["string", "number", "null"]},
                      "expires": {"type": ["string", "number", "null"]},
                      "task_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                      "ignore_result": {"type": ["boolean", "null"]},
                      "immutable": {"type": ["boolean", "null"]}
                    }
                  }
                }
              },
              "Signatures": {
                "oneOf": [
                  {"$ref": "#/components/schemas/Signature"},
                  {"type": "array", "items": {"$ref": "#/components/schemas/Signature"}}
                ]
              },
              "TaskRequest": {
                "type": "object",
                "description": "What to send. Unknown keys are ignored.",
                "properties": {
                  "task": {
                    "type": "string",
                    "minLength": 1,
                    "default": "create_task",
                    "description": "The task's name (on the frontend's allow-list)."
                  },
                  "args": {"type": "array", "default": []},
                  "kwargs": {"type": "object", "default": {}},
                  "queue": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 200,
                    "pattern": "^[A-Za-z0-9_.:@-]+$",
                    "description": "`celery`, a routed queue, or one allowed with `--allow-queue`; default: the routes', else `celery`."
                  },
                  "priority": {"type": "integer", "minimum": 0, "maximum": 255, "default": 0},
                  "countdown": {
                    "type": "number",
                    "minimum": 0,
                    "description": "Seconds from now before a worker may run the task.",
                    "maximum": 3155760000
                  },
                  "eta": {
                    "type": ["string", "number"],
                    "description": "When a worker may run the task: ISO 8601, or seconds since the epoch."
                  },
                  "expires": {
                    "type": ["string", "number"],
                    "description": "Seconds from now (at most 3155760000), or an ISO 8601 time, after which the task is not run (its state becomes REVOKED)."
                  },
                  "ignore_result": {"type": "boolean", "default": false},
                  "task_id": {"$ref": "#/components/schemas/TaskIdString"},
                  "link": {
                    "$ref": "#/components/schemas/Signatures",
                    "description": "Tasks sent with the result when this one succeeds: a signature or up to 16 (plain task signatures, no links of their own)."
                  },
                  "link_error": {
                    "$ref": "#/components/schemas/Signatures",
                    "description": "Tasks sent with this task's id when it fails."
                  }
                }
              },
              "ProcessRequest": {
                "type": "object",
                "properties": {
                  "blob_path": {"type": "string", "minLength": 1},
                  "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}
                }
              },
              "RevokeRequest": {
                "type": "object",
                "properties": {
                  "terminate": {"type": ["boolean", "null"], "default": false},
                  "signal": {"type": ["string", "null"], "default": "SIGTERM"}
                }
              },
              "RevokeResult": {
                "type": "object",
                "required": ["task_id", "revoked", "terminate", "signal"],
                "properties": {
                  "task_id": {"type": "string"},
                  "revoked": {"const": true},
                  "terminate": {"type": "boolean"},
                  "signal": {"enum": ["SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"]}
                }
              },
              "TaskState": {
                "type": "object",
                "description": "A task's state as `GET /status` shows it: `status` (the tutorial's wording) and Celery's `state`; `result` for SUCCESS (the return value) and FAILURE (the error as text); `meta` for other states (PROGRESS's `{\"progress\": n}`, RETRY's and REVOKED's exception).",
                "required": ["status", "state"],
                "properties": {"status": {"type": "string"}, "state": {"type": "string"}, "result": true, "meta": true},
                "allOf": [
                  {
                    "if": {"properties": {"state": {"const": "PENDING"}}},
                    "then": {"properties": {"status": {"const": "Pending..."}}}
                  },
                  {
                    "if": {"properties": {"state": {"const": "SUCCESS"}}},
                    "then": {"required": ["result"], "properties": {"status": {"const": "Completed"}}}
                  },
                  {
                    "if": {"properties": {"state": {"const": "FAILURE"}}},
                    "then": {
                      "required": ["result"],
                      "properties": {"status": {"const": "Failed"}, "result": {"type": "string"}}
                    }
                  },
                  {
                    "if": {"properties": {"state": {"not": {"enum": ["PENDING", "SUCCESS", "FAILURE", "UNKNOWN"]}}}},
                    "then": {"required": ["meta"]}
                  }
                ]
              },
              "TaskStatus": {
                "allOf": [{"$ref": "#/components/schemas/TaskState"}],
                "properties": {
                  "children": {
                    "type": "array",
                    "description": "The record's children (one level): each child's id and state; the first 100 it lists.",
                    "items": {"$ref": "#/components/schemas/ChildStatus"}
                  },
                  "children_total": {
                    "type": "integer",
                    "description": "How many children the record lists, present only when more than `children` shows."
                  }
                }
              },
              "ChildStatus": {
                "allOf": [{"$ref": "#/components/schemas/TaskState"}],
                "required": ["task_id"],
                "properties": {
                  "task_id": {"type": "string"},
                  "group_id": {"type": "string", "description": "The group the child belongs to, when it is a group member."}
                }
              },
              "Health": {
                "type": "object",
                "required": ["status", "broker", "websockets"],
                "properties": {
                  "status": {"enum": ["ok", "degraded"]},
                  "broker": {"enum": ["connected", "unreachable"]},
                  "websockets": {"type": "integer", "minimum": 0}
                }
              },
              "Time": {"type": ["string", "null"], "format": "date-time", "description": "ISO 8601 UTC, null when not known."},
              "ScheduleEntryInput": {
                "type": "object",
                "description": "A periodic task as a schedule file's `beat_schedule` spells it.",
                "required": ["task", "schedule"],
                "additionalProperties": false,
                "properties": {
                  "task": {"type": "string", "minLength": 1},
                  "schedule": {
                    "oneOf": [
                      {"type": "number", "exclusiveMinimum": 0, "description": "Every so many seconds."},
                      {
                        "type": "object",
                        "required": ["crontab"],
                        "additionalProperties": false,
                        "properties": {
                          "crontab": {
                            "oneOf": [
                              {
                                "type": "string",
                                "description": "Five fields: minute hour day_of_month month_of_year day_of_week."
                              },
                              {
                                "type": "object",
                                "additionalProperties": false,
                                "properties": {
                                  "minute": {"type": ["string", "integer"]},
                                  "hour": {"type": ["string", "integer"]},
                                  "day_of_month": {"type": ["string", "integer"]},
                                  "month_of_year": {"type": ["string", "integer"]},
                                  "day_of_week": {"type": ["string", "integer"]}
                                }
                              }
                            ]
                          },
                          "timezone": {
                            "type": ["string", "null"],
                            "description": "An IANA zone such as `Europe/Berlin` (default UTC)."
                          }
                        }
                      }
                    ]
                  },
                  "args": {"type": ["array", "null"]},
                  "kwargs": {"type": ["object", "null"]},
                  "options": {
                    "type": ["object", "null"],
                    "additionalProperties": false,
                    "properties": {
                      "queue": {"type": ["string", "null"], "minLength": 1},
                      "priority": {"type": ["integer", "null"], "minimum": 0, "maximum": 9},
                      "expires": {"type": ["number", "null"], "minimum": 0}
                    }
                  },
                  "catch_up": {"enum": ["skip", "once"], "default": "once"}
                }
              },
              "ScheduleEntry": {
                "type": "object",
                "description": "An entry as stored: normalized (a crontab as one line, every key present).",
                "required": ["task", "schedule", "args", "kwargs", "options", "catch_up"],
                "additionalProperties": false,
                "properties": {
                  "task": {"type": "string", "minLength": 1},
                  "schedule": {
                    "oneOf": [
                      {"type": "number", "exclusiveMinimum": 0},
                      {
                        "type": "object",
                        "required": ["crontab"],
                        "additionalProperties": false,
                        "properties": {"crontab": {"type": "string"}, "timezone": {"type": "string"}}
                      }
                    ]
                  },
                  "args": {"type": "array"},
                  "kwargs": {"type": "object"},
                  "options": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                      "queue": {"type": "string"},
                      "priority": {"type": "integer", "minimum": 0, "maximum": 9},
                      "expires": {"type": "number", "minimum": 0}
                    }
                  },
                  "catch_up": {"enum": ["skip", "once"]}
                }
              },
              "ScheduleEntryState": {
                "type": "object",
                "required": ["name", "source", "entry", "next_run", "last_run", "last_sent_at", "total_run_count", "last_task_id"],
                "properties": {
                  "name": {"type": "string"},
                  "source": {
                    "type": ["string", "null"],
                    "description": "Where the entry comes from: a schedule file's path, or `redis` for a run-time entry."
                  },
                  "entry": {
                    "description": "The entry (null when unreadable).",
                    "oneOf": [{"$ref": "#/components/schemas/ScheduleEntry"}, {"type": "null"}]
                  },
                  "next_run": {"$ref": "#/components/schemas/Time"},
                  "last_run": {"$ref": "#/components/schemas/Time"},
                  "last_sent_at": {"$ref": "#/components/schemas/Time"},
                  "total_run_count": {"type": "integer", "minimum": 0},
                  "last_task_id": {"type": ["string", "null"]}
                }
              },
              "Schedule": {
                "type": "object",
                "required": ["leader", "schedulers", "entries"],
                "properties": {
                  "leader": {
                    "oneOf": [
                      {"type": "null"},
                      {
                        "type": "object",
                        "required": ["id", "since"],
                        "properties": {"id": {"type": "string"}, "since": {"$ref": "#/components/schemas/Time"}}
                      }
                    ]
                  },
                  "schedulers": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": ["id", "seen_at"],
                      "properties": {"id": {"type": "string"}, "seen_at": {"$ref": "#/components/schemas/Time"}}
                    }
                  },
                  "entries": {"type": "array", "items": {"$ref": "#/components/schemas/ScheduleEntryState"}}
                }
              },
              "QueueDepths": {
                "type": "object",
                "description": "Messages waiting, by queue name.",
                "additionalProperties": {"type": "integer", "minimum": 0}
              },
              "Stats": {
                "type": "object",
                "required": ["time", "interval", "queues", "history", "workers", "websockets"],
                "properties": {
                  "time": {"type": "number", "description": "Seconds since the epoch."},
                  "interval": {"type": "number", "exclusiveMinimum": 0, "description": "Seconds between samples."},
                  "queues": {"$ref": "#/components/schemas/QueueDepths"},
                  "history": {
                    "type": "array",
                    "description": "Samples of the last 10 minutes, oldest first.",
                    "items": {
                      "type": "object",
                      "required": ["t", "queues", "submitted", "processed"],
                      "properties": {
                        "t": {"type": "number"},
                        "queues": {"$ref": "#/components/schemas/QueueDepths"},
                        "submitted": {
                          "type": "integer",
                          "minimum": 0,
                          "description": "Tasks sent through this frontend in the interval."
                        },
                        "processed": {
                          "type": "integer",
                          "minimum": 0,
                          "description": "Tasks the workers finished in the interval."
                        },
                        "depth_total": {
                          "type": "integer",
                          "minimum": 0,
                          "description": "Messages waiting in every queue read (`queues` lists the 50 deepest)."
                        },
                        "queue_count": {"type": "integer", "minimum": 0, "description": "Queues read."}
                      }
                    }
                  },
                  "workers": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": ["hostname", "queues", "concurrency", "processed", "active", "software", "last_seen"],
                      "properties": {
                        "hostname": {"type": "string"},
                        "queues": {"type": "array", "items": {"type": "string"}},
                        "concurrency": {"type": "integer", "minimum": 0},
                        "processed": {"type": "integer", "minimum": 0},
                        "active": {"type": "integer", "minimum": 0},
                        "software": {"type": "string", "description": "`celeris 0.2.0`, `celery 5.7.0`, ..."},
                        "last_seen": {"type": "number"}
                      }
                    }
                  },
                  "websockets": {"type": "integer", "minimum": 0}
                }
              },
              "WebSocketSubscribe": {
                "type": "object",
                "description": "Client to server: follow these tasks (at most `--ws-max-ids-per-message` ids, `--ws-max-subscriptions` in all).",
                "required": ["subscribe"],
                "properties": {"subscribe": {"type": "array", "items": {"$ref": "#/components/schemas/TaskIdString"}}}
              },
              "WebSocketUnsubscribe": {
                "type": "object",
                "description": "Client to server: stop following these tasks, or all of them (`\"*\"`).",
                "required": ["unsubscribe"],
                "properties": {"unsubscribe": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"const": "*"}]}}
              },
              "WebSocketTaskUpdate": {
                "description": "Server to client: a subscribed task's state, as `GET /status` shows it, with its id.",
                "allOf": [{"$ref": "#/components/schemas/TaskState"}],
                "required": ["task_id"],
                "properties": {"task_id": {"type": "string"}}
              },
              "WebSocketStatusEvent": {
                "type": "object",
                "description": "Server to client: an event published on `task_status` (the firehose), e.g. `{\"task_id\": id, \"state\": \"PROGRESS\", \"progress\": 1, \"total\": 3, \"ts\": 1795251688.7}`.",
                "required": ["task_id", "state"],
                "properties": {
                  "task_id": {"type": "string"},
                  "state": {"type": "string"},
                  "progress": {"type": "number"},
                  "total": {"type": "number"},
                  "ts": {"type": "number"}
                }
              },
              "WebSocketError": {
                "type": "object",
                "description": "Server to client: a refused `subscribe` (`too_many_ids`, `invalid_task_id`, `too_many_subscriptions`, `overloaded`: the server follows too many tasks now), or a subscribed task's state not looked up (with `task_id`).",
                "required": ["error", "detail"],
                "properties": {"error": {"type": "string"}, "detail": {"type": "string"}, "task_id": {"type": "string"}}
              }
            }
          }
        }
        """#
}
