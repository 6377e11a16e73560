//! The organization's opt-out list: importing an external one (CSV or JSON)
//! and exporting every number that may not be texted (CSV or JSON, streamed).

use axum::Json;
use axum::body::Body as HttpBody;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use textbank_app::{OptOutEntry, OptOutFormat, OptOutImport};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Auth, Query};
use crate::server::AppState;
use crate::v1::lists::{CSV_TYPES, csv_field, media_type};

/// The JSON form of an opt-out import.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "describes the body for the document; the app parses it"
)]
pub struct OptOutPhones {
    /// Phone numbers (E.164, or national in the server's default region).
    phones: Vec<String>,
}

/// Imports an external opt-out list: every number in it is opted out of the
/// organization. The body is CSV (a header row naming the phone column) or
/// JSON (`{"phones": [...]}`).
#[utoipa::path(
    post,
    path = "/v1/opt-outs",
    tag = "opt-outs",
    request_body(content(
        (OptOutPhones = "application/json"),
        (String = "text/csv"),
    )),
    responses(
        (status = 200, description = "How many numbers were opted out", body = OptOutImport),
        (status = 409, description = "`conflict`: a number's stream moved; try again", body = ApiError),
        (status = 413, description = "`payload_too_large`: too large or too many numbers", body = ApiError),
        (status = 415, description = "`unsupported_media_type`: neither CSV nor JSON", body = ApiError),
        (status = 422, description = "`invalid_request`: no phone column, or a number that does not parse", body = ApiError),
    ),
)]
pub async fn import(
    State(state): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    body: HttpBody,
) -> Result<Json<OptOutImport>, ApiError> {
    let format = match media_type(&headers).as_deref() {
        Some(media) if CSV_TYPES.contains(&media) => OptOutFormat::Csv,
        Some("application/json") => OptOutFormat::Json,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the opt-out list as Content-Type: text/csv (a header row naming the \
                 phone column) or application/json ({\"phones\": [...]})",
            ));
        }
    };
    let summary = state
        .app
        .import_opt_outs(&caller, format, body.into_data_stream())
        .await?;
    Ok(Json(summary))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (the default) or `json`.
    #[param(pattern = "^(csv|json)$")]
    format: Option<String>,
}

/// The export as JSON.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the streamed body for the document")]
pub struct OptOutList {
    opt_outs: Vec<OptOutEntry>,
}

/// Every number that may not be texted, as CSV (`phone,source,opted_out_at`)
/// or JSON; streamed page by page, so an org with a great many opt-outs
/// never has them all in memory.
#[utoipa::path(
    get,
    path = "/v1/opt-outs",
    tag = "opt-outs",
    params(ExportParams),
    responses(
        (status = 200, description = "The opt-out list", content(
            (String = "text/csv"),
            (OptOutList = "application/json"),
        )),
        (status = 422, description = "`invalid_request`: a format other than csv or json", body = ApiError),
        (status = 503, description = "`projection_lagging`: the opt-out list is catching up; try again", body = ApiError),
    ),
)]
pub async fn export(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let json = match params.format.as_deref() {
        None | Some("csv") => false,
        Some("json") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("format must be csv or json, not {other:?}"),
            ));
        }
    };
    // Answers 403 (or 503 while the read model lags) before the body starts.
    let export = state.app.export_opt_outs(&caller).await?;
    let pages = stream::unfold((export, true), move |(mut export, first)| async move {
        match export.next_page().await {
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                let text = if json {
                    json_rows(&rows, first)
                } else {
                    Ok(csv_rows(&rows))
                };
                Some((text, (export, false)))
            }
            Err(err) => Some((Err(std::io::Error::other(err.to_string())), (export, false))),
        }
    });
    let (open, close, content_type) = if json {
        ("{\"opt_outs\":[", "]}", "application/json")
    } else {
        ("phone,source,opted_out_at\n", "", "text/csv; charset=utf-8")
    };
    let body = stream::once(async move { Ok(open.to_owned()) })
        .chain(pages)
        .chain(stream::once(async move { Ok(close.to_owned()) }));
    let mut response = (
        [(header::CONTENT_TYPE, content_type)],
        HttpBody::from_stream(body),
    )
        .into_response();
    if !json {
        response.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            header::HeaderValue::from_static("attachment; filename=\"opt-outs.csv\""),
        );
    }
    Ok(response)
}

fn timestamp(entry: &OptOutEntry) -> String {
    entry
        .opted_out_at
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn csv_rows(rows: &[OptOutEntry]) -> String {
    let mut text = String::with_capacity(rows.len() * 48);
    for entry in rows {
        text.push_str(&format!(
            "{},{},{}\n",
            csv_field(&entry.phone),
            csv_field(&entry.source),
            timestamp(entry)
        ));
    }
    text
}

/// The page's entries as JSON array items; `first` for the page that opens
/// the array (no leading comma).
fn json_rows(rows: &[OptOutEntry], first: bool) -> Result<String, std::io::Error> {
    let mut text = String::with_capacity(rows.len() * 80);
    for (index, entry) in rows.iter().enumerate() {
        if !(first && index == 0) {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(entry).map_err(std::io::Error::other)?);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(phone: &str) -> OptOutEntry {
        OptOutEntry {
            phone: phone.into(),
            source: "import".into(),
            opted_out_at: "2026-11-25T19:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn csv_rows_keep_numbers_and_defuse_formulas() {
        let text = csv_rows(&[entry("+15552010001"), entry("=1+1")]);
        assert_eq!(
            text,
            "+15552010001,import,2026-11-25T19:00:00Z\n'=1+1,import,2026-11-25T19:00:00Z\n"
        );
    }

    #[test]
    fn json_pages_join_into_one_array() {
        let first = json_rows(&[entry("+15552010001"), entry("+15552010002")], true).unwrap();
        let second = json_rows(&[entry("+15552010003")], false).unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&format!("{{\"opt_outs\":[{first}{second}]}}"))
                .expect("valid JSON");
        assert_eq!(body["opt_outs"].as_array().map(Vec::len), Some(3));
    }
}
