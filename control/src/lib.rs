//! MicroVibe Live control plane: configuration, HTTP API (auth, live rooms,
//! nginx-rtmp callbacks, health, metrics), storage (PostgreSQL | SQLite) and
//! cache (Redis | in-process).
//!
//! Layers: `routes` (HTTP shapes, auth extraction) → `services` (methods on
//! [`app::AppState`]) → the [`store::Store`] and [`cache::Cache`] traits → backends.
//! [`cluster`]: several nodes on one PostgreSQL + Redis (membership, leases, placement).

pub mod app;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod engine_link;
pub mod error;
pub mod hooks;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod services;
pub mod store;
