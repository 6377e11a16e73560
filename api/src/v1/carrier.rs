//! The organization's carrier settings (owner/admin). Credentials go in and
//! never come back out.

use axum::Json;
use axum::extract::State;
use serde_json::Value;
use textbank_app::CarrierSettings;

use crate::error::ApiError;
use crate::extract::{Auth, Body};
use crate::server::AppState;
use crate::v1::to_json;

pub async fn put_carrier(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(settings): Body<CarrierSettings>,
) -> Result<Json<Value>, ApiError> {
    to_json(state.app.configure_carrier(&caller, settings).await?)
}

pub async fn get_carrier(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
    to_json(state.app.carrier_settings(&caller).await?)
}
