//! `GET /api/v1/openapi.json`: the OpenAPI 3.0 document of this API, generated from the route table
//! ([`crate::domain::auth::ROUTES`]) — the same rows the guard enforces — so it cannot drift from what the server
//! does. Each operation names the permission it needs (`x-permission`); the report model's JSON Schema is
//! included as a component.

use axum::Json;
use serde_json::{Map, Value, json};

use crate::domain::auth::{Access, ROUTES};

pub async fn document() -> Json<Value> {
    Json(build())
}

pub fn build() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters = Vec::new();
        let integer = json!({"type": "integer", "minimum": 1});
        // An AE title: 1–16 characters, no backslash (PS3.5 §6.2).
        let ae_title = json!({"type": "string", "minLength": 1, "maxLength": 16, "pattern": "^[^\\\\]+$"});
        for (name, schema) in [("id", &integer), ("number", &integer), ("ae_title", &ae_title)] {
            if route.path.contains(&format!("{{{name}}}")) {
                parameters.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
            }
        }
        let (security, needs) = match route.access {
            Access::Public => (json!([]), "none (public)".to_string()),
            Access::SignedIn => (json!([{"session": []}, {"token": []}]), "any signed-in caller".to_string()),
            Access::Person => (json!([{"session": []}]), "a signed-in person (no API token)".to_string()),
            Access::Needs(p) => (json!([{"session": []}, {"token": []}]), p.as_str().to_string()),
        };
        let mut responses = json!({
            "200": {"description": "OK"},
            "400": {"$ref": "#/components/responses/Error"},
        });
        if route.access != Access::Public {
            responses["401"] = json!({"$ref": "#/components/responses/Error"});
            responses["403"] = json!({"$ref": "#/components/responses/Error"});
        }
        let mut operation = json!({
            "summary": route.summary,
            "description": format!("Needs: {needs}. POST with a session cookie also needs the X-CSRF-Token header."),
            "operationId": operation_id(route.method, route.path),
            "security": security,
            "responses": responses,
            "x-permission": needs,
        });
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        let item = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        item[route.method.to_lowercase()] = operation;
    }
    let report_schema: Value =
        serde_json::from_str(include_str!("../../../../report/report.schema.json")).unwrap_or(Value::Null);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "MedGemma-X API",
            "version": crate::VERSION,
            "description": "胸部影像智能辅助系统接口。所有 AI 输出仅供参考，须由执业医师复核确认。 \
                Chest imaging assistant API; every AI output is advisory.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "mgx_session"},
                "token": {"type": "http", "scheme": "bearer", "description": "API token (mgx_…), for integrators"},
            },
            "responses": {
                "Error": {
                    "description": "An error with a code and messages in Chinese and English",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message_zh", "message_en"],
                        "properties": {
                            "code": {"type": "string"},
                            "message_zh": {"type": "string"},
                            "message_en": {"type": "string"},
                        },
                    }},
                },
                // JSON Schema 2020-12 keywords OpenAPI 3.0 does not know are kept under an extension.
                "Report": {"type": "object", "description": "The structured report; its JSON Schema is report/report.schema.json", "x-json-schema": report_schema},
            },
        },
    })
}

/// `GET /api/v1/studies/{id}/chat` → `get_studies_id_chat`.
fn operation_id(method: &str, path: &str) -> String {
    let tail: String = path
        .trim_start_matches("/api/v1/")
        .trim_start_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let tail: Vec<&str> = tail.split('_').filter(|p| !p.is_empty()).collect();
    format!("{}_{}", method.to_lowercase(), tail.join("_"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn operation_ids_are_unique_and_readable() {
        assert_eq!(super::operation_id("GET", "/api/v1/studies/{id}/chat"), "get_studies_id_chat");
        let doc = super::build();
        let mut ids: Vec<String> = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].as_str().unwrap().to_string());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count);
        assert_eq!(count, crate::domain::auth::ROUTES.len());
    }
}
