//! The organization's carrier settings (owner/admin). Credentials go in and
//! never come back out.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
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

/// What removing the carrier did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CarrierRemoved {
    /// False when no carrier was configured (nothing changed).
    pub removed: bool,
    /// The log position of the `CarrierRemoved` event, when one was written.
    pub position: Option<u64>,
}

/// Removes the organization's carrier: its settings, sealed credentials and
/// sending numbers. Until a carrier is configured again, launching or
/// resuming a campaign and every click answer 409 `no_carrier`, and texters'
/// queues hold with that reason. Removing none is not an error.
#[utoipa::path(
    delete,
    path = "/v1/carrier",
    tag = "carrier",
    responses(
        (status = 200, description = "Removed (or there was none)", body = CarrierRemoved),
    ),
)]
pub async fn delete_carrier(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<CarrierRemoved>, ApiError> {
    let position = state.app.remove_carrier(&caller).await?;
    Ok(Json(CarrierRemoved {
        removed: position.is_some(),
        position,
    }))
}
