import ClipDetect

/// The service's contract (OpenAPI 3.1), served at /openapi.json and checked against the running
/// server by schemathesis. The limits in it are the running server's.
enum OpenAPIDocument {
    static func json(_ configuration: ServerConfiguration) -> String {
        // With keys the API needs one; without, it needs none.
        let security = configuration.apiKeys.isEmpty ? "[{}]" : #"[{"bearer": []}]"#
        // What any request may get besides its own answers: a request the parser cannot read or
        // HTTP/1.1 without Host (400), an expectation other than 100-continue (417), its head too
        // slow (408), the service draining after SIGTERM (503); and every path answers OPTIONS with
        // its methods (204).
        let common = ##""400": {"$ref": "#/components/responses/Error"}, "408": {"$ref": "#/components/responses/Error"}, "417": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}"##
        let get = "GET, HEAD, OPTIONS"
        func options(_ allow: String) -> String {
            #""options": {"summary": "The methods this path answers (also a CORS preflight)", "security": [{}], "responses": {"204": {"description": "No content", "headers": {"Allow": {"required": true, "schema": {"type": "string", "const": "\#(allow)"}}}}, "#
                + common + "}}"
        }
        return #"""
    {
      "openapi": "3.1.0",
      "info": {"title": "clipdetect", "version": "\#(clipdetectVersion)",
               "description": "Tells whether an image was made by a generative model (frozen CLIP features and a light head: the paper's linear head, UnivFD's or RINE's). A path not listed here gets 404 (NotFound), a method a path does not answer 405 (MethodNotAllowed, with Allow); every request may get 400 (not HTTP/1.1 the server reads, or no Host), 408 (its head did not arrive within \#(configuration.connections.headerTimeout)), 417 (an Expect other than 100-continue) and 503 while the service shuts down."},
      "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
          "Error": {"type": "object", "required": ["kind", "message"],
                    "properties": {"kind": {"type": "string", "enum": [\#(ErrorKind.all.map { "\"\($0)\"" }.joined(separator: ", "))]},
                                   "message": {"type": "string"}}},
          "ErrorResponse": {"type": "object", "required": ["error"], "properties": {"error": {"$ref": "#/components/schemas/Error"}}},
          "ImageVerdict": {"type": "object", "required": ["index"],
                           "properties": {"index": {"type": "integer", "minimum": 0},
                                          "name": {"type": "string"},
                                          "ai_generated": {"type": "number", "minimum": 0, "maximum": 1},
                                          "verdict": {"type": "string", "enum": ["synthetic", "real", "uncertain"]},
                                          "label": {"type": "string", "enum": ["synthetic", "real"]},
                                          "probability": {"type": "number", "minimum": 0, "maximum": 1},
                                          "score": {"type": "number"},
                                          "scores": {"type": "object", "additionalProperties": {"type": "number"}},
                                          "fused": {"type": "number"},
                                          "width": {"type": "integer", "minimum": 1},
                                          "height": {"type": "integer", "minimum": 1},
                                          "error": {"$ref": "#/components/schemas/Error"},
                                          "stability": {"type": "object", "required": ["failedDraws"],
                                                        "properties": {"agreement": {"type": "number", "minimum": 0, "maximum": 1},
                                                                       "minScore": {"type": "number"}, "medianScore": {"type": "number"}, "maxScore": {"type": "number"},
                                                                       "isStable": {"type": "boolean"}, "failedDraws": {"type": "integer", "minimum": 0},
                                                                       "failure": {"type": "string"}}}}},
          "DetectResponse": {"type": "object", "required": ["model", "images"],
                             "properties": {"model": {"type": "string"}, "images": {"type": "array", "items": {"$ref": "#/components/schemas/ImageVerdict"}}}},
          "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
        },
        "responses": {
          "Error": {"description": "The request as a whole was refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
          "NotFound": {"description": "No such path (kind not_found)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
          "MethodNotAllowed": {"description": "The path does not answer this method (kind method_not_allowed)",
                               "headers": {"Allow": {"required": true, "schema": {"type": "string"}}},
                               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
          "Overloaded": {"description": "The queue cannot take the images now (kind overloaded); retry after the seconds given",
                         "headers": {"Retry-After": {"required": true, "schema": {"type": "integer", "minimum": 1, "maximum": 60}}},
                         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        }
      },
      "paths": {
        "/v1/detect": {
          "post": {
            "summary": "Verdicts on one or many images",
            "description": "At most \#(configuration.maxImagesPerRequest) images and \#(configuration.maxBodyBytes) bytes in one request, \#(configuration.limits.maxPixels) pixels in one image.",
            "security": \#(security),
            "parameters": [
              {"name": "stability", "in": "query", "required": false,
               "description": "Re-score each image under this many seeded draws of the chain and report how often the verdict holds (one more forward pass per draw and image).",
               "schema": {"type": "integer", "minimum": 1, "maximum": \#(max(configuration.maxStabilityDraws, 1))}},
              {"name": "chain", "in": "query", "required": false, "description": "The chain the stability draws come from (with stability only).",
               "schema": {"type": "string", "enum": ["reshare", "social", "paper"], "default": "reshare"}}],
            "requestBody": {"required": true, "content": {
              "multipart/form-data": {"schema": {"type": "object", "required": ["media"],
                                                 "properties": {"media": {"type": "array", "minItems": 1, "maxItems": \#(configuration.maxImagesPerRequest),
                                                                           "items": {"type": "string", "contentMediaType": "application/octet-stream"}}}}},
              "application/octet-stream": {}, "image/*": {}, "image/jpeg": {}, "image/png": {}, "image/webp": {}}},
            "responses": {
              "200": {"description": "One verdict (or error) per image, in order", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DetectResponse"}}}},
              "400": {"$ref": "#/components/responses/Error"},
              "401": {"$ref": "#/components/responses/Error"},
              "408": {"$ref": "#/components/responses/Error"},
              "413": {"$ref": "#/components/responses/Error"},
              "415": {"$ref": "#/components/responses/Error"},
              "417": {"$ref": "#/components/responses/Error"},
              "429": {"$ref": "#/components/responses/Overloaded"},
              "501": {"$ref": "#/components/responses/Error"},
              "503": {"$ref": "#/components/responses/Error"}
            }
          },
          \#(options("POST, OPTIONS"))
        },
        "/v1/models": {
          "get": {"summary": "The backbone, heads, calibration and thresholds", "security": \#(security),
                  "responses": {"200": {"description": "The loaded detector", "content": {"application/json": {"schema": {"type": "object", "required": ["version", "backbone", "heads"]}}}},
                                "401": {"$ref": "#/components/responses/Error"}, \#(common)}},
          \#(options(get))
        },
        "/healthz": {"get": {"summary": "The process is up", "responses": {"200": {"description": "Up", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}, \#(common)}},
                     \#(options(get))},
        "/readyz": {"get": {"summary": "The model is loaded and requests are accepted", "responses": {"200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}, \#(common)}},
                    \#(options(get))},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": \#(security),
                             "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
                                           "401": {"$ref": "#/components/responses/Error"}, \#(common)}},
                     \#(options(get))},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}, \#(common)}},
                          \#(options(get))}
      }
    }
    """#
    }
}
