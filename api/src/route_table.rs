//! The route table: the router is built through it, one (method, path) at a
//! time, so the list of endpoints it hands out and the routes the router
//! serves cannot differ. axum's `Router` cannot list its routes; tests that
//! must cover every route (the tenancy walk) read this list instead.
//!
//! When the API moves to utoipa-axum's `OpenApiRouter`, the list can come
//! from the OpenAPI document's paths instead: [`endpoints`] keeps returning
//! [`Endpoint`]s, so the tests that walk it need no change.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};

use crate::server::AppState;

/// One route: a method and a path template as the router has it
/// (`/v1/lists/{list_id}`). A GET route answers HEAD too, as axum's do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
}

/// A router under construction and the endpoints registered on it.
pub struct RouteTable<S = AppState> {
    router: Router<S>,
    endpoints: Vec<Endpoint>,
}

impl<S: Clone + Send + Sync + 'static> Default for RouteTable<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> RouteTable<S> {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            endpoints: Vec::new(),
        }
    }

    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::GET, MethodFilter::GET, path, handler)
    }

    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::POST, MethodFilter::POST, path, handler)
    }

    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::PUT, MethodFilter::PUT, path, handler)
    }

    pub fn patch<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::PATCH, MethodFilter::PATCH, path, handler)
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::DELETE, MethodFilter::DELETE, path, handler)
    }

    /// Registers one endpoint; a second method on a known path joins the
    /// path's other methods, as `get(a).post(b)` does.
    fn on<H: Handler<T, S>, T: 'static>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.router = self.router.route(path, on(filter, handler));
        self.endpoints.push(Endpoint { method, path });
        self
    }

    pub fn merge(mut self, other: Self) -> Self {
        self.router = self.router.merge(other.router);
        self.endpoints.extend(other.endpoints);
        self
    }

    pub fn into_parts(self) -> (Router<S>, Vec<Endpoint>) {
        (self.router, self.endpoints)
    }
}

/// Every endpoint the server's router serves, in registration order.
pub fn endpoints() -> Vec<Endpoint> {
    crate::server::route_table().into_parts().1
}
