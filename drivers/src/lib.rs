//! # bluepods-drivers
//!
//! The production driver for `bluepods-core`: a tokio event loop that turns
//! network activity, local commands and timers into core inputs and executes
//! the core's actions ([`event_loop`]); QUIC transport on quinn and rustls
//! with the ring provider ([`transport`]); fjall storage ([`store`]); the HTTP
//! API on axum ([`http`]); Prometheus metrics with prometheus-client
//! ([`metrics`]); operator log lines ([`logs`]); key files ([`keys`]); and the
//! assembly of a whole node ([`daemon`]).
//!
//! Crate choices: quinn/rustls/tokio/fjall are the mission's; rcgen makes the
//! self-signed certificates; axum is the smallest well-kept HTTP server on the
//! hyper stack quinn users already build; prometheus-client is the official
//! Rust client for the exposition format.

#![forbid(unsafe_code)]

pub mod congestion;
pub mod daemon;
pub mod event_loop;
pub mod http;
pub mod keys;
pub mod logs;
pub mod metrics;
mod offload;
pub mod plan;
mod prewarm;
pub mod profile;
pub mod store;
mod streams;
mod tls;
pub mod transport;
