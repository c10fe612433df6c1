/// The gateway's OpenAPI 3.1 document, served at `/openapi.json`. `GatewayRouteTests` checks that its paths and
/// methods are exactly ``GatewayRoute``'s, so the two change together.
enum OpenAPIDocument {
    static let text = #"""
        {
          "openapi": "3.1.0",
          "info": {
            "title": "PlexSpaces gateway",
            "version": "1.0.0",
            "description": "JSON over HTTP to any actor or workflow of a PlexSpaces cluster, through any node: the node routes each call to the owner. Every route but /healthz and /readyz needs `Authorization: Bearer TOKEN` when the node is configured with a token."
          },
          "security": [
            {
              "bearer": []
            },
            {}
          ],
          "paths": {
            "/v1/actors/{type}/{key}": {
              "post": {
                "operationId": "callActor",
                "summary": "Call an actor: the body is its request in JSON (the shape Swift's JSONEncoder gives the actor's Request, e.g. {\"increment\":{}}); the answer is its reply.",
                "parameters": [
                  {
                    "name": "type",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "key",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  },
                  {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "schema": {
                      "type": "string"
                    },
                    "description": "A retry with the same key returns the stored reply without running again."
                  }
                ],
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {}
                    }
                  }
                },
                "responses": {
                  "200": {
                    "description": "OK",
                    "content": {
                      "application/json": {
                        "schema": {}
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows": {
              "get": {
                "operationId": "listWorkflows",
                "summary": "List workflow instances from every node's index, newest first.",
                "parameters": [
                  {
                    "name": "type",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "status",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "$ref": "#/components/schemas/Status"
                    }
                  },
                  {
                    "name": "limit",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "responses": {
                  "200": {
                    "description": "Instances",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "array",
                          "items": {
                            "$ref": "#/components/schemas/Summary"
                          }
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows/{type}/{id}": {
              "post": {
                "operationId": "startWorkflow",
                "summary": "Start an instance of a workflow type with the body as its input (idempotent by id: an existing instance is returned as it is). The ids cancel and terminate are the cancel and terminate routes of instance {type}, never a start.",
                "parameters": [
                  {
                    "name": "type",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "requestBody": {
                  "required": false,
                  "description": "The input in JSON (null when empty).",
                  "content": {
                    "application/json": {
                      "schema": {}
                    }
                  }
                },
                "responses": {
                  "200": {
                    "description": "The instance",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Workflow"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows/{id}": {
              "get": {
                "operationId": "describeWorkflow",
                "summary": "An instance's status.",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The instance",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Workflow"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              },
              "delete": {
                "operationId": "purgeWorkflow",
                "summary": "Purge a finished instance (its id may be started again).",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "responses": {
                  "200": {
                    "description": "OK",
                    "content": {
                      "application/json": {
                        "schema": {}
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows/{id}/result": {
              "get": {
                "operationId": "workflowResult",
                "summary": "An instance's result: 200 once it finished (status, result or error), 202 while it runs.",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "wait_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "Wait this long for it to finish (at most the gateway's maximum timeout). The wait ends early, with the status as it is, when the client closes its side of the connection or resets its HTTP/2 stream."
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "responses": {
                  "200": {
                    "description": "Finished",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Workflow"
                        }
                      }
                    }
                  },
                  "202": {
                    "description": "Still running",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Workflow"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows/{id}/history": {
              "get": {
                "operationId": "workflowHistory",
                "summary": "An instance with every step: times, attempts and outcome.",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "responses": {
                  "200": {
                    "description": "OK",
                    "content": {
                      "application/json": {
                        "schema": {}
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows/{id}/events/{name}": {
              "post": {
                "operationId": "signalWorkflow",
                "summary": "Deliver an external event (a signal) with the body as its payload.",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "name",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "requestBody": {
                  "required": false,
                  "description": "The payload in JSON (null when empty).",
                  "content": {
                    "application/json": {
                      "schema": {}
                    }
                  }
                },
                "responses": {
                  "200": {
                    "description": "OK",
                    "content": {
                      "application/json": {
                        "schema": {}
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows/{id}/queries/{name}": {
              "get": {
                "operationId": "queryWorkflow",
                "summary": "Ask a running instance's query handler; nothing is journaled.",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "name",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "responses": {
                  "200": {
                    "description": "OK",
                    "content": {
                      "application/json": {
                        "schema": {}
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows/{id}/cancel": {
              "post": {
                "operationId": "cancelWorkflow",
                "summary": "Ask an instance to cancel (cooperative: compensations run).",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The instance",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Workflow"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/workflows/{id}/terminate": {
              "post": {
                "operationId": "terminateWorkflow",
                "summary": "End an instance at once.",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "reason",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    },
                    "description": "How long the call may take, in milliseconds (also the Plex-Timeout-Ms header)."
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The instance",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Workflow"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/v1/cluster": {
              "get": {
                "operationId": "cluster",
                "summary": "The members as the answering node sees them, with their state and activations.",
                "responses": {
                  "200": {
                    "description": "Cluster status",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Cluster"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "500": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  },
                  "504": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/healthz": {
              "get": {
                "operationId": "health",
                "summary": "The process is alive.",
                "security": [],
                "responses": {
                  "200": {
                    "description": "Alive"
                  }
                }
              }
            },
            "/readyz": {
              "get": {
                "operationId": "ready",
                "summary": "The node has joined its cluster and its journal is open.",
                "security": [],
                "responses": {
                  "200": {
                    "description": "Ready"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/dashboard": {
              "get": {
                "operationId": "dashboard",
                "summary": "The operator's dashboard (HTML): members and their states, activations per node and by type on this node, this node's slowest and failed calls, workflows by status.",
                "responses": {
                  "200": {
                    "description": "An HTML page",
                    "content": {
                      "text/html": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/dashboard/workflows/{id}": {
              "get": {
                "operationId": "dashboardWorkflow",
                "summary": "One workflow instance's history as a timeline (HTML).",
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "An HTML page",
                    "content": {
                      "text/html": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/metrics": {
              "get": {
                "operationId": "metrics",
                "summary": "Every instrument of the process in the Prometheus text format (calls, latencies, activations, mailboxes, journal commits, members, workflows). Open without the token when so configured.",
                "responses": {
                  "200": {
                    "description": "Prometheus text format 0.0.4",
                    "content": {
                      "text/plain": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/openapi.json": {
              "get": {
                "operationId": "openAPI",
                "summary": "This document.",
                "responses": {
                  "200": {
                    "description": "OpenAPI 3.1"
                  }
                }
              }
            }
          },
          "components": {
            "securitySchemes": {
              "bearer": {
                "type": "http",
                "scheme": "bearer"
              }
            },
            "responses": {
              "Error": {
                "description": "A typed error",
                "headers": {
                  "Retry-After": {
                    "schema": {
                      "type": "integer"
                    },
                    "description": "On 429 and 503."
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Error"
                    }
                  }
                }
              }
            },
            "schemas": {
              "Error": {
                "type": "object",
                "required": [
                  "error"
                ],
                "properties": {
                  "error": {
                    "type": "object",
                    "required": [
                      "code",
                      "message"
                    ],
                    "properties": {
                      "code": {
                        "type": "string",
                        "description": "timeout, nodeUnavailable, unknownActorType, remoteFailure, overloaded, invalidRequest, cancelled, codecFailure, shuttingDown, storageFailure, permissionDenied; a workflow error code; or unauthorized, notFound, methodNotAllowed, payloadTooLarge, badRequest."
                      },
                      "message": {
                        "type": "string"
                      },
                      "actorCode": {
                        "type": "string",
                        "description": "The code the actor's own error chose."
                      }
                    }
                  }
                }
              },
              "Status": {
                "type": "string",
                "enum": [
                  "pending",
                  "running",
                  "completed",
                  "failed",
                  "cancelled",
                  "terminated"
                ]
              },
              "Workflow": {
                "type": "object",
                "required": [
                  "id",
                  "type",
                  "status",
                  "steps"
                ],
                "properties": {
                  "id": {
                    "type": "string"
                  },
                  "type": {
                    "type": "string"
                  },
                  "status": {
                    "$ref": "#/components/schemas/Status"
                  },
                  "steps": {
                    "type": "integer"
                  },
                  "startedAt": {
                    "type": "integer",
                    "description": "Unix milliseconds"
                  },
                  "closedAt": {
                    "type": "integer"
                  },
                  "currentStep": {
                    "type": "string"
                  },
                  "nextDueAt": {
                    "type": "integer"
                  },
                  "parent": {
                    "type": "string"
                  },
                  "continuedAsNew": {
                    "type": "integer"
                  },
                  "result": {},
                  "error": {
                    "type": "object"
                  }
                }
              },
              "Summary": {
                "type": "object",
                "required": [
                  "id",
                  "type",
                  "status"
                ],
                "properties": {
                  "id": {
                    "type": "string"
                  },
                  "type": {
                    "type": "string"
                  },
                  "status": {
                    "$ref": "#/components/schemas/Status"
                  },
                  "startedAt": {
                    "type": "integer"
                  },
                  "closedAt": {
                    "type": "integer"
                  }
                }
              },
              "Cluster": {
                "type": "object",
                "properties": {
                  "answeredBy": {
                    "type": "string"
                  },
                  "clusterName": {
                    "type": "string"
                  },
                  "clusterID": {
                    "type": "string"
                  },
                  "membership": {
                    "type": "string"
                  },
                  "members": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "properties": {
                        "nodeID": {
                          "type": "string"
                        },
                        "address": {
                          "type": "string"
                        },
                        "incarnation": {
                          "type": "integer"
                        },
                        "state": {
                          "type": "string"
                        },
                        "activations": {
                          "type": "integer"
                        }
                      }
                    }
                  },
                  "named": {
                    "type": "object",
                    "additionalProperties": {
                      "type": "string"
                    }
                  }
                }
              }
            }
          }
        }
        """#

    static let bytes = Array(text.utf8)
}
