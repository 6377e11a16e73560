//! The route table: the router is built through it, so the list of
//! endpoints it hands out and the routes the router serves cannot differ.
//! axum's `Router` cannot list its routes; tests that must cover every route
//! (the tenancy walk, the OpenAPI coverage test) read this list instead.
//!
//! A documented route is registered with [`RouteTable::routes`] from
//! utoipa-axum's `routes!`: its method and path come from the handler's
//! `#[utoipa::path]`, and the same call adds the operation to the OpenAPI
//! document, so the document cannot drift from the router. The few routes
//! that are not API (the web app's pages and assets) are registered with
//! [`RouteTable::get`] and recorded as undocumented.

use std::sync::OnceLock;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::PathItem;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::server::AppState;

/// One route: a method and a path template as the router has it
/// (`/v1/lists/{list_id}`). A GET route answers HEAD too, as axum's do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
}

/// A registered route and whether the OpenAPI document describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: String,
    pub documented: bool,
}

/// A router under construction, its OpenAPI document, and the routes
/// registered on it.
pub struct RouteTable<S = AppState> {
    router: OpenApiRouter<S>,
    routes: Vec<Route>,
}

impl<S: Clone + Send + Sync + 'static> Default for RouteTable<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// The methods `item` has an operation for (the ones the API uses).
pub fn operation_methods(item: &PathItem) -> impl Iterator<Item = Method> {
    [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::PATCH, &item.patch),
        (Method::DELETE, &item.delete),
    ]
    .into_iter()
    .filter(|(_, operation)| operation.is_some())
    .map(|(method, _)| method)
    .collect::<Vec<_>>()
    .into_iter()
}

impl<S: Clone + Send + Sync + 'static> RouteTable<S> {
    pub fn new() -> Self {
        Self {
            router: OpenApiRouter::new(),
            routes: Vec::new(),
        }
    }

    /// A table whose document starts from `frame` (info, tags, security).
    pub fn with_openapi(frame: OpenApi) -> Self {
        Self {
            router: OpenApiRouter::with_openapi(frame),
            routes: Vec::new(),
        }
    }

    /// Registers documented handlers made with `utoipa_axum::routes!` (one
    /// path, one or more methods): path and methods come from their
    /// `#[utoipa::path]` annotations.
    pub fn routes(mut self, routes: UtoipaMethodRouter<S>) -> Self {
        for (path, item) in &routes.1.paths {
            for method in operation_methods(item) {
                self.routes.push(Route {
                    method,
                    path: path.clone(),
                    documented: true,
                });
            }
        }
        self.router = self.router.routes(routes);
        self
    }

    /// Registers an undocumented GET route: a web page or asset, not API.
    pub fn get<H: Handler<T, S>, T: 'static>(mut self, path: &'static str, handler: H) -> Self {
        self.router = self.router.route(path, get(handler));
        self.routes.push(Route {
            method: Method::GET,
            path: path.to_owned(),
            documented: false,
        });
        self
    }

    pub fn merge(mut self, other: Self) -> Self {
        self.router = self.router.merge(other.router);
        self.routes.extend(other.routes);
        self
    }

    /// The router, the OpenAPI document of its documented routes, and every
    /// route in registration order.
    pub fn into_parts(self) -> (axum::Router<S>, OpenApi, Vec<Route>) {
        let (router, document) = self.router.split_for_parts();
        (router, document, self.routes)
    }
}

/// Every route the server's router serves, in registration order.
pub fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| crate::server::route_table().into_parts().2)
}

/// Every endpoint the server's router serves, in registration order.
pub fn endpoints() -> Vec<Endpoint> {
    routes()
        .iter()
        .map(|route| Endpoint {
            method: route.method.clone(),
            path: route.path.as_str(),
        })
        .collect()
}
