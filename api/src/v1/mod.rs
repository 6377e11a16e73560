//! The `/v1` API. Every route authenticates with a bearer API key; the org
//! always comes from the key.

mod assignments;
mod audit;
mod campaign_metrics;
mod campaigns;
mod carrier;
mod inbox;
mod lists;
mod members;
mod opt_outs;
mod send;
mod sessions;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::error::ApiError;
use crate::server::AppState;

/// A response body as JSON; a value that cannot be serialized is our bug.
pub(crate) fn to_json<T: serde::Serialize>(
    value: T,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(
        serde_json::to_value(value).map_err(|err| ApiError::internal(&err))?,
    ))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(audit::routes())
        .merge(campaign_metrics::routes())
        .merge(inbox::routes())
        .route("/v1/me", get(members::me))
        .route("/v1/texters", get(members::list_texters))
        .route("/v1/sessions", post(sessions::sign_in))
        .route("/v1/sessions/current", delete(sessions::sign_out))
        .route(
            "/v1/invites/{token}",
            get(sessions::get_invite).post(sessions::accept_invite),
        )
        .route(
            "/v1/members/{member_id}/invites",
            post(sessions::create_invite),
        )
        .route(
            "/v1/members",
            post(members::add_member).get(members::list_members),
        )
        .route(
            "/v1/api-keys",
            post(members::issue_key).get(members::list_keys),
        )
        .route("/v1/api-keys/{key_id}", delete(members::revoke_key))
        .route("/v1/lists", post(lists::upload).get(lists::list_lists))
        .route("/v1/lists/{list_id}", get(lists::get_list))
        .route("/v1/lists/{list_id}/rejections", get(lists::rejections))
        .route(
            "/v1/campaigns",
            post(campaigns::create_campaign).get(campaigns::list_campaigns),
        )
        .route(
            "/v1/campaigns/{campaign_id}",
            get(campaigns::get_campaign).patch(campaigns::change_settings),
        )
        .route(
            "/v1/campaigns/{campaign_id}/script",
            put(campaigns::revise_script),
        )
        .route(
            "/v1/campaigns/{campaign_id}/launch",
            post(campaigns::launch),
        )
        .route("/v1/campaigns/{campaign_id}/pause", post(campaigns::pause))
        .route(
            "/v1/campaigns/{campaign_id}/resume",
            post(campaigns::resume),
        )
        .route(
            "/v1/campaigns/{campaign_id}/archive",
            post(campaigns::archive),
        )
        .route(
            "/v1/campaigns/{campaign_id}/assignments",
            post(assignments::assign).get(assignments::list),
        )
        .route(
            "/v1/campaigns/{campaign_id}/assignments/request",
            post(assignments::request),
        )
        .route(
            "/v1/campaigns/{campaign_id}/assignments/release",
            post(assignments::release),
        )
        .route(
            "/v1/campaigns/{campaign_id}/assignments/reassign",
            post(assignments::reassign),
        )
        .route(
            "/v1/carrier",
            put(carrier::put_carrier).get(carrier::get_carrier),
        )
        .route("/v1/opt-outs", post(opt_outs::import).get(opt_outs::export))
        .route("/v1/texter/queue", get(send::queue))
        .route("/v1/messages", post(send::send))
        .route("/v1/conversations/{conversation_id}", get(send::thread))
        .route(
            "/v1/conversations/{conversation_id}/messages",
            post(send::reply),
        )
        .route(
            "/v1/conversations/{conversation_id}/opt-out",
            post(send::opt_out),
        )
        .route(
            "/v1/conversations/{conversation_id}/answers",
            post(send::answer),
        )
}
