//! The MedGemma-X server. `main.rs` only parses the command line; everything it runs lives here.

// The web app's page views are deeply nested types, and the server renders them (app/src/lib.rs says why).
#![recursion_limit = "256"]

pub mod api;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod chat;
pub mod config;
pub mod data_dir;
pub mod db;
pub mod deliveries;
pub mod error;
pub mod exports;
pub mod files;
pub mod gpu;
pub mod http;
pub mod images;
pub mod inference;
pub mod ingest;
pub mod key_images;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod ops;
pub mod pdf;
pub mod pseudonym;
pub mod reports;
pub mod runfile;
pub mod sd_notify;
pub mod security_report;
pub mod serve;
pub mod shutdown;
pub mod supervise;
