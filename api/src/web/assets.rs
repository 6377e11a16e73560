//! The web app's static files, compiled into the binary so the app works
//! offline and a deployment is one file.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::Path;

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// (name, content type, contents)
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../../web/app.css")),
    ("app.js", JS, include_str!("../../web/app.js")),
    ("login.js", JS, include_str!("../../web/login.js")),
    ("texter.css", CSS, include_str!("../../web/texter.css")),
    ("send.js", JS, include_str!("../../web/send.js")),
    ("inbox.js", JS, include_str!("../../web/inbox.js")),
    ("manager.css", CSS, include_str!("../../web/manager.css")),
    (
        "script-editor.js",
        JS,
        include_str!("../../web/script-editor.js"),
    ),
    ("campaigns.js", JS, include_str!("../../web/campaigns.js")),
    ("campaign.js", JS, include_str!("../../web/campaign.js")),
    ("lists.js", JS, include_str!("../../web/lists.js")),
    (
        "compliance.css",
        CSS,
        include_str!("../../web/compliance.css"),
    ),
    ("compliance.js", JS, include_str!("../../web/compliance.js")),
    ("admin.js", JS, include_str!("../../web/admin.js")),
    (
        "reference.css",
        CSS,
        include_str!("../../web/reference.css"),
    ),
];

pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(asset, _, _)| *asset == name)
        .ok_or_else(|| ApiError::not_found("no such asset"))?;
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidated on every load: a new binary's files are seen at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_content_and_a_unique_name() {
        for (name, content_type, body) in ASSETS {
            assert!(!body.trim().is_empty(), "{name} is empty");
            assert!(
                content_type.starts_with(if name.ends_with(".js") {
                    "text/javascript"
                } else {
                    "text/css"
                }),
                "{name}"
            );
            assert_eq!(ASSETS.iter().filter(|(n, _, _)| n == name).count(), 1);
        }
    }
}
