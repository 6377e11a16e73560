//! The `/v1` API. Every route authenticates with a bearer API key; the org
//! always comes from the key.

mod assignments;
mod audit;
mod campaign_metrics;
mod campaigns;
mod carrier;
mod events;
mod inbox;
mod lists;
mod live;
mod members;
mod opt_outs;
mod send;
mod sessions;

use crate::error::ApiError;
use crate::route_table::RouteTable;

/// A response body as JSON; a value that cannot be serialized is our bug.
pub(crate) fn to_json<T: serde::Serialize>(
    value: T,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(
        serde_json::to_value(value).map_err(|err| ApiError::internal(&err))?,
    ))
}

pub fn routes() -> RouteTable {
    RouteTable::new()
        .merge(audit::routes())
        .merge(campaign_metrics::routes())
        .merge(events::routes())
        .merge(inbox::routes())
        .get("/v1/me", members::me)
        .get("/v1/texters", members::list_texters)
        .post("/v1/sessions", sessions::sign_in)
        .delete("/v1/sessions/current", sessions::sign_out)
        .get("/v1/invites/{token}", sessions::get_invite)
        .post("/v1/invites/{token}", sessions::accept_invite)
        .post("/v1/members/{member_id}/invites", sessions::create_invite)
        .post("/v1/members", members::add_member)
        .get("/v1/members", members::list_members)
        .post("/v1/api-keys", members::issue_key)
        .get("/v1/api-keys", members::list_keys)
        .delete("/v1/api-keys/{key_id}", members::revoke_key)
        .post("/v1/lists", lists::upload)
        .get("/v1/lists", lists::list_lists)
        .get("/v1/lists/{list_id}", lists::get_list)
        .get("/v1/lists/{list_id}/rejections", lists::rejections)
        .post("/v1/campaigns", campaigns::create_campaign)
        .get("/v1/campaigns", campaigns::list_campaigns)
        .get("/v1/campaigns/{campaign_id}", campaigns::get_campaign)
        .patch("/v1/campaigns/{campaign_id}", campaigns::change_settings)
        .put(
            "/v1/campaigns/{campaign_id}/script",
            campaigns::revise_script,
        )
        .post("/v1/campaigns/{campaign_id}/launch", campaigns::launch)
        .post("/v1/campaigns/{campaign_id}/pause", campaigns::pause)
        .post("/v1/campaigns/{campaign_id}/resume", campaigns::resume)
        .post("/v1/campaigns/{campaign_id}/archive", campaigns::archive)
        .post(
            "/v1/campaigns/{campaign_id}/assignments",
            assignments::assign,
        )
        .get("/v1/campaigns/{campaign_id}/assignments", assignments::list)
        .post(
            "/v1/campaigns/{campaign_id}/assignments/request",
            assignments::request,
        )
        .post(
            "/v1/campaigns/{campaign_id}/assignments/release",
            assignments::release,
        )
        .post(
            "/v1/campaigns/{campaign_id}/assignments/reassign",
            assignments::reassign,
        )
        .put("/v1/carrier", carrier::put_carrier)
        .get("/v1/carrier", carrier::get_carrier)
        .post("/v1/opt-outs", opt_outs::import)
        .get("/v1/opt-outs", opt_outs::export)
        .get("/v1/texter/queue", send::queue)
        .post("/v1/messages", send::send)
        .get("/v1/conversations/{conversation_id}", send::thread)
        .post("/v1/conversations/{conversation_id}/messages", send::reply)
        .post("/v1/conversations/{conversation_id}/opt-out", send::opt_out)
        .post("/v1/conversations/{conversation_id}/answers", send::answer)
}
