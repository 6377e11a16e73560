//! The `/v1` API. Every route authenticates with a bearer API key; the org
//! always comes from the key.

mod lists;
mod members;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::server::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(members::me))
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
}
