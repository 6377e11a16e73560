//! `GET /docs`: the API reference, rendered on the server from the OpenAPI
//! document (`/openapi.json`), so it cannot say other than the contract and
//! needs nothing from another site: operations by tag with their
//! parameters, bodies, answers and error codes, then the schemas.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::{escape, page_response, plain_page};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const SCHEMA_PREFIX: &str = "#/components/schemas/";

pub async fn page() -> Response {
    static HTML: OnceLock<String> = OnceLock::new();
    let html = HTML.get_or_init(|| {
        serde_json::to_value(crate::openapi::document())
            .map(|document| render(&document))
            .unwrap_or_else(|err| format!("<p>The document could not be rendered: {err}</p>"))
    });
    page_response(StatusCode::OK, html.clone())
}

/// The whole page for `document` (an OpenAPI document as JSON).
fn render(document: &Value) -> String {
    let text = |value: &Value| escape(value.as_str().unwrap_or_default());
    let mut body = String::new();
    let info = &document["info"];
    let _ = write!(
        body,
        "<h1>{} <small>{}</small></h1>\n<p>The machine-readable contract: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {}).</p>\n{}",
        text(&info["title"]),
        text(&info["version"]),
        text(&document["openapi"]),
        paragraphs(info["description"].as_str().unwrap_or_default()),
    );
    let empty = Vec::new();
    let tags = document["tags"].as_array().unwrap_or(&empty);
    body.push_str("<nav><h2>Contents</h2><ul>");
    for tag in tags {
        let _ = write!(
            body,
            "<li><a href=\"#tag-{0}\">{0}</a>: {1}</li>",
            text(&tag["name"]),
            text(&tag["description"])
        );
    }
    body.push_str("<li><a href=\"#schemas\">Schemas</a></li></ul></nav>\n");
    for tag in tags {
        let name = tag["name"].as_str().unwrap_or_default();
        let _ = writeln!(body, "<section id=\"tag-{0}\"><h2>{0}</h2>", escape(name));
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                let operation = &item[method];
                let tagged = operation["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.iter().any(|tag| tag == name));
                if tagged {
                    body.push_str(&render_operation(method, path, operation));
                }
            }
        }
        body.push_str("</section>\n");
    }
    body.push_str("<section id=\"schemas\"><h2>Schemas</h2>\n");
    for (name, schema) in document["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            body,
            "<article id=\"schema-{0}\"><h3>{0}</h3>{1}</article>",
            escape(name),
            render_schema(schema)
        );
    }
    body.push_str("</section>\n");
    plain_page(
        "docs",
        "API reference",
        Some("reference"),
        "reference",
        &body,
        &[],
    )
}

fn render_operation(method: &str, path: &str, operation: &Value) -> String {
    let mut html = String::new();
    let id = operation["operationId"].as_str().unwrap_or_default();
    let _ = write!(
        html,
        "<article class=\"operation\" id=\"op-{id}\"><h3><code class=\"method {method}\">{}</code> <code>{}</code></h3>\n{}",
        method.to_uppercase(),
        escape(path),
        paragraphs(operation["description"].as_str().unwrap_or_default()),
        id = escape(id),
    );
    html.push_str(if operation.get("security").is_some() {
        "<p class=\"auth\">No API key needed.</p>"
    } else {
        "<p class=\"auth\">Needs an API key (or a session and its CSRF token).</p>"
    });
    if let Some(parameters) = operation["parameters"].as_array() {
        html.push_str(
            "<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th><th>Description</th></tr>",
        );
        for parameter in parameters {
            let required = if parameter["required"] == true {
                " <em>required</em>"
            } else {
                ""
            };
            let _ = write!(
                html,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(parameter["name"].as_str().unwrap_or_default()),
                escape(parameter["in"].as_str().unwrap_or_default()),
                type_of(&parameter["schema"]),
                inline_code(parameter["description"].as_str().unwrap_or_default()),
            );
        }
        html.push_str("</table>\n");
    }
    if let Some(body) = operation["requestBody"].as_object() {
        html.push_str("<h4>Request body</h4><ul>");
        for (media, content) in body
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let _ = write!(
                html,
                "<li><code>{}</code>: {}</li>",
                escape(media),
                type_of(&content["schema"])
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str(
        "<h4>Responses</h4><table><tr><th>Status</th><th>Body</th><th>Description</th></tr>",
    );
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        let codes: Vec<String> = response["x-error-codes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|code| format!("<code>{}</code>", escape(code)))
            .collect();
        let bodies: Vec<String> = response["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(media, content)| {
                // An error answer's schema narrows the error shape to its
                // codes, listed beside it.
                let schema = if codes.is_empty() {
                    type_of(&content["schema"])
                } else {
                    type_of(&content["schema"]["allOf"][0])
                };
                format!("<code>{}</code> {schema}", escape(media))
            })
            .collect();
        let mut description = inline_code(response["description"].as_str().unwrap_or_default());
        if !codes.is_empty() {
            description = format!("codes: {}<br>{description}", codes.join(", "));
        }
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{description}</td></tr>",
            escape(status),
            bodies.join("<br>"),
        );
    }
    html.push_str("</table></article>\n");
    html
}

/// A component schema: its properties as a table, or its type.
fn render_schema(schema: &Value) -> String {
    let mut html = paragraphs(schema["description"].as_str().unwrap_or_default());
    let Some(properties) = schema["properties"].as_object() else {
        html.push_str(&format!("<p>{}</p>", type_of(schema)));
        return html;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    html.push_str("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
    for (name, property) in properties {
        let flag = if required.contains(&name.as_str()) {
            ""
        } else {
            " <em>optional</em>"
        };
        let _ = write!(
            html,
            "<tr><td><code>{}</code>{flag}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            type_of(property),
            inline_code(property["description"].as_str().unwrap_or_default()),
        );
    }
    html.push_str("</table>");
    html
}

/// A short, linked description of a schema's type.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = escape(reference.trim_start_matches(SCHEMA_PREFIX));
        return format!("<a href=\"#schema-{name}\">{name}</a>");
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            let joiner = if combinator == "allOf" {
                " and "
            } else {
                " or "
            };
            return parts.iter().map(type_of).collect::<Vec<_>>().join(joiner);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|value| format!("<code>{}</code>", escape(&value.to_string())))
            .collect();
        return format!("one of {}", values.join(", "));
    }
    let kind = match &schema["type"] {
        Value::String(kind) => escape(kind),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .map(escape)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if schema.get("properties").is_some() => "object".to_owned(),
        _ => "any".to_owned(),
    };
    if kind.contains("array") {
        return format!("{kind} of {}", type_of(&schema["items"]));
    }
    if schema.get("properties").is_some() {
        let fields: Vec<String> = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, property)| format!("<code>{}</code>: {}", escape(name), type_of(property)))
            .collect();
        return format!("{kind} {{ {} }}", fields.join(", "));
    }
    match schema["format"].as_str() {
        Some(format) => format!("{kind} ({})", escape(format)),
        None => kind,
    }
}

/// Text with blank lines between paragraphs and `code` in backticks.
fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .filter(|paragraph| !paragraph.trim().is_empty())
        .map(|paragraph| format!("<p>{}</p>", inline_code(paragraph)))
        .collect()
}

/// Escaped text with `code` in backticks.
fn inline_code(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(index, part)| {
            if index % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_described_and_references_linked() {
        let schema = serde_json::json!({
            "type": "array",
            "items": {"$ref": "#/components/schemas/ListView"}
        });
        assert_eq!(
            type_of(&schema),
            "array of <a href=\"#schema-ListView\">ListView</a>"
        );
        assert_eq!(
            type_of(&serde_json::json!({"type": ["string", "null"], "format": "uuid"})),
            "string or null (uuid)"
        );
    }

    #[test]
    fn descriptions_are_escaped_with_code_in_backticks() {
        assert_eq!(
            paragraphs("Pass `cursor` <b>\n\nnext"),
            "<p>Pass <code>cursor</code> &lt;b&gt;</p><p>next</p>"
        );
    }
}
