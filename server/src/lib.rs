//! The MedGemma-X server. `main.rs` only parses the command line; everything it runs lives here, in
//! layers whose dependencies point one way (tests/layering.rs keeps them so):
//!
//! `main/cli → startup → web | dimse → domain → store → support`
//!
//! - [`startup`]: `serve` (the one place that assembles the application), its configuration, the
//!   supervisor and the status command.
//! - [`web`]: the router, the application state, the guard, the API handlers (extract, call one domain
//!   function, map the result) and the one HTTP error type.
//! - [`dimse`]: the DICOM listener (C-ECHO, C-STORE): the other door into the domain, beside `web`; the
//!   two never use each other.
//! - [`domain`]: what the product does — reports and their workflow, questions to the model, ingest,
//!   images, exports, accounts, the audit trail, deliveries, backups. No axum here.
//! - [`store`]: the database pool and migrations, the object store, and the queries behind named
//!   functions.
//! - [`support`]: clock, files, the data dir, pseudonyms, logging, signals — what everything may use.

// The web app's page views are deeply nested types, and the server renders them (app/src/lib.rs says why).
#![recursion_limit = "256"]

pub mod dimse;
pub mod domain;
pub mod startup;
pub mod store;
pub mod support;
pub mod web;

/// The server's version, as reported by `/healthz`, `/readyz`, OpenAPI, backups and AI provenance.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
