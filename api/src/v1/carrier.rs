//! The organization's carrier settings (owner/admin). Credentials go in and
//! never come back out.

use axum::Json;
use axum::extract::State;
use textbank_app::{CarrierSettings, CarrierView};

use crate::error::ApiError;
use crate::extract::{Auth, Body};
use crate::server::AppState;

/// Sets the organization's carrier: which one, its numbers, its credentials
/// (stored sealed, never shown again) and the automated texts.
#[utoipa::path(
    put,
    path = "/v1/carrier",
    tag = "carrier",
    request_body = CarrierSettings,
    responses(
        (status = 200, description = "The settings as stored, without secrets", body = CarrierView),
        (status = 409, description = "`conflict`: a number already sends for another organization, or the settings moved", body = ApiError),
        (status = 422, description = "`invalid_request`: an unknown carrier, a bad number or text; `secret_required`: a credential is missing; `address_not_allowed`: `api_base` points at an internal address", body = ApiError),
    ),
)]
pub async fn put_carrier(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(settings): Body<CarrierSettings>,
) -> Result<Json<CarrierView>, ApiError> {
    Ok(Json(state.app.configure_carrier(&caller, settings).await?))
}

/// The organization's carrier settings, without secrets.
#[utoipa::path(
    get,
    path = "/v1/carrier",
    tag = "carrier",
    responses(
        (status = 200, description = "The settings", body = CarrierView),
        (status = 404, description = "`not_found`: no carrier is configured", body = ApiError),
    ),
)]
pub async fn get_carrier(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<CarrierView>, ApiError> {
    Ok(Json(state.app.carrier_settings(&caller).await?))
}
