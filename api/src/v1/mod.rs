//! The `/v1` API. Every route authenticates with a bearer API key; the org
//! always comes from the key.

mod assignments;
mod audit;
mod campaign_metrics;
mod campaigns;
mod carrier;
mod events;
mod handling;
mod inbox;
mod lists;
mod live;
mod members;
mod opt_outs;
mod send;
mod sessions;
mod webhooks;

use crate::error::ApiError;
use crate::route_table::RouteTable;
use utoipa_axum::routes;

/// A response body as JSON; a value that cannot be serialized is our bug.
pub(crate) fn to_json<T: serde::Serialize>(
    value: T,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(
        serde_json::to_value(value).map_err(|err| ApiError::internal(&err))?,
    ))
}

/// An optional JSON body: none (or only whitespace) is the defaults.
pub(crate) fn optional_body<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|err| ApiError::invalid_request(err.to_string()))
}

/// A CSV download streamed from `chunks`, named `filename`.
pub(crate) fn csv_attachment(
    chunks: impl futures_util::Stream<Item = Result<axum::body::Bytes, textbank_app::AppError>>
    + Send
    + 'static,
    filename: &str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let chunks = futures_util::StreamExt::map(chunks, |chunk| {
        chunk.map_err(|err| std::io::Error::other(err.to_string()))
    });
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

/// Every `/v1` route. Each is registered with `routes!`, which takes its
/// method and path from the handler's `#[utoipa::path]` and adds the
/// operation to the OpenAPI document. To add a documented route: annotate
/// the handler with `#[utoipa::path(method, path = "/v1/…", tag = …,
/// params(…), request_body = …, responses(…))]` (error answers as
/// `(status = 404, description = "`not_found`: …", body = ApiError)`; the
/// shared ones are added for you, see `crate::openapi`), derive `ToSchema`
/// on its body types and `IntoParams` on its query struct, and register it
/// here with `.routes(routes!(module::handler))` (several handlers of one
/// path go in one `routes!`). The coverage test fails for a `/v1` route
/// registered any other way.
pub fn routes() -> RouteTable {
    RouteTable::new()
        .merge(audit::routes())
        .merge(campaign_metrics::routes())
        .merge(events::routes())
        .merge(inbox::routes())
        .merge(handling::routes())
        .merge(webhooks::routes())
        .routes(routes!(members::me))
        .routes(routes!(members::list_texters))
        .routes(routes!(sessions::sign_in))
        .routes(routes!(sessions::sign_out))
        .routes(routes!(sessions::get_invite, sessions::accept_invite))
        .routes(routes!(sessions::create_invite))
        .routes(routes!(members::add_member, members::list_members))
        .routes(routes!(members::issue_key, members::list_keys))
        .routes(routes!(members::revoke_key))
        .routes(routes!(lists::upload, lists::list_lists))
        .routes(routes!(lists::get_list))
        .routes(routes!(lists::rejections))
        .routes(routes!(
            campaigns::create_campaign,
            campaigns::list_campaigns
        ))
        .routes(routes!(campaigns::get_campaign, campaigns::change_settings))
        .routes(routes!(campaigns::export_results))
        .routes(routes!(campaigns::revise_script))
        .routes(routes!(campaigns::copy_campaign))
        .routes(routes!(campaigns::launch))
        .routes(routes!(campaigns::pause))
        .routes(routes!(campaigns::resume))
        .routes(routes!(campaigns::archive))
        .routes(routes!(assignments::assign, assignments::list))
        .routes(routes!(assignments::request))
        .routes(routes!(assignments::release))
        .routes(routes!(assignments::reassign))
        .routes(routes!(
            carrier::put_carrier,
            carrier::get_carrier,
            carrier::delete_carrier
        ))
        .routes(routes!(opt_outs::import, opt_outs::export))
        .routes(routes!(send::queue))
        .routes(routes!(send::send))
        .routes(routes!(send::thread))
        .routes(routes!(send::reply))
        .routes(routes!(send::opt_out))
        .routes(routes!(send::answer))
}

/// The campaign in the path (the handlers read it as a string and answer
/// 404 for one that is not an id).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "describes the path for the document only")]
pub(crate) struct CampaignPath {
    /// The campaign's id.
    campaign_id: uuid::Uuid,
}

/// The conversation in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "describes the path for the document only")]
pub(crate) struct ConversationPath {
    /// The conversation's id.
    conversation_id: uuid::Uuid,
}
