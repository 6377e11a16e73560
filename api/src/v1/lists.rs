//! Contact lists: CSV upload (streamed), listing, and the rejected rows as CSV.

use axum::Json;
use axum::body::Body as HttpBody;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use textbank_app::{ImportSummary, ListDeclaration};
use textbank_domain::ListId;
use textbank_projections::lists::ListView;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Auth, Path, Query, path_id};
use crate::server::AppState;

/// Content types a CSV upload may declare (spreadsheet programs and browsers
/// disagree on which one a .csv file is).
pub(crate) const CSV_TYPES: [&str; 4] = [
    "text/csv",
    "application/csv",
    "text/plain",
    "application/vnd.ms-excel",
];
/// The media type of the body, lower case, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Rejected rows per database page while streaming them out.
const REJECTION_PAGE: u32 = 5_000;

/// Where the list came from, declared with the upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The list's name.
    name: Option<String>,
    /// Where the numbers came from (a voter file, a sign-up form).
    source: Option<String>,
    /// Why these people may be texted.
    consent_basis: Option<String>,
}

/// Uploads a contact list: the CSV file is the body (a header row naming the
/// columns, one of them the phone number). Rows that cannot be texted are
/// rejected and counted by reason; see `/v1/lists/{list_id}/rejections`.
#[utoipa::path(
    post,
    path = "/v1/lists",
    tag = "lists",
    params(UploadParams),
    request_body(description = "The CSV file", content(
        (String = "text/csv"),
        (String = "application/csv"),
        (String = "text/plain"),
        (String = "application/vnd.ms-excel"),
    )),
    responses(
        (status = 201, description = "The list was imported", body = ImportSummary),
        (status = 413, description = "`payload_too_large`: the file is larger than the server takes", body = ApiError),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as CSV", body = ApiError),
        (status = 422, description = "`invalid_request`: a missing declaration, no phone column, a duplicate column or a file that is not CSV; `too_many_columns`, `header_too_long`, `field_too_long`: over a limit (`limit`)", body = ApiError),
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: HttpBody,
) -> Result<(StatusCode, Json<ImportSummary>), ApiError> {
    if !media_type(&headers)
        .as_deref()
        .is_some_and(|t| CSV_TYPES.contains(&t))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "upload the list as the request body with Content-Type: text/csv",
        ));
    }
    let declaration = ListDeclaration {
        name: params.name.unwrap_or_default(),
        source: params.source.unwrap_or_default(),
        consent_basis: params.consent_basis.unwrap_or_default(),
    };
    let summary = state
        .app
        .import_list(
            &caller,
            declaration,
            body.into_data_stream(),
            state.app.import_limits(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Lists {
    lists: Vec<ListView>,
}

/// The organization's contact lists.
#[utoipa::path(
    get,
    path = "/v1/lists",
    tag = "lists",
    responses((status = 200, description = "Every list", body = Lists)),
)]
pub async fn list_lists(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Lists>, ApiError> {
    let lists = state.app.lists(&caller).await?;
    Ok(Json(Lists { lists }))
}

/// One contact list.
#[utoipa::path(
    get,
    path = "/v1/lists/{list_id}",
    tag = "lists",
    params(("list_id" = Uuid, Path, description = "The list's id")),
    responses(
        (status = 200, description = "The list", body = ListView),
    ),
)]
pub async fn get_list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(list_id): Path<String>,
) -> Result<Json<ListView>, ApiError> {
    let list_id: ListId = path_id(&list_id, "list")?;
    Ok(Json(state.app.list(&caller, list_id).await?))
}

/// The rows of a list that were rejected, as CSV: `line,reason,phone,detail`.
/// Streamed page by page, so a list with a million rejections never sits
/// in memory.
#[utoipa::path(
    get,
    path = "/v1/lists/{list_id}/rejections",
    tag = "lists",
    params(("list_id" = Uuid, Path, description = "The list's id")),
    responses(
        (status = 200, description = "The rejected rows", content_type = "text/csv", body = String),
    ),
)]
pub async fn rejections(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(list_id): Path<String>,
) -> Result<Response, ApiError> {
    let list_id: ListId = path_id(&list_id, "list")?;
    // Answer 404 (or 403) before the stream starts.
    state.app.list(&caller, list_id).await?;
    let header_row = Some(Ok::<_, std::io::Error>(String::from(
        "line,reason,phone,detail\n",
    )));
    let pages = stream::unfold(Some(0u64), move |after| {
        let state = state.clone();
        let caller = caller.clone();
        async move {
            let after = after?;
            match state
                .app
                .list_rejections(&caller, list_id, after, REJECTION_PAGE)
                .await
            {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = rows.last().map(|row| row.0);
                    let mut text = String::with_capacity(rows.len() * 48);
                    for (line, reason, phone, detail) in rows {
                        text.push_str(&format!(
                            "{line},{reason},{},{}\n",
                            csv_field(&phone),
                            csv_field(&detail)
                        ));
                    }
                    Some((Ok(text), next))
                }
                Err(err) => Some((Err(std::io::Error::other(err.to_string())), None)),
            }
        }
    });
    let body = HttpBody::from_stream(futures_util::StreamExt::chain(
        stream::iter(header_row),
        pages,
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"rejections.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// Quotes a CSV field when it needs it. A cell that a spreadsheet would run
/// as a formula (`=…`, `@…`, or `+`/`-` followed by more than a number) is
/// prefixed with `'`.
pub(crate) fn csv_field(value: &str) -> String {
    let formula = value.starts_with(['=', '@'])
        || (value.starts_with(['+', '-']) && value.chars().any(|c| c.is_alphabetic() || c == '('));
    let value = if formula {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1 555 0100"), "+1 555 0100");
        assert_eq!(csv_field("+SUM(A1)"), "'+SUM(A1)");
    }
}
