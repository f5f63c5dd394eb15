//! deskgate: an authentication and SSO gateway that stands in front of a helpdesk (or any
//! web app), works out each person's usergroups and permissions, refuses what is not
//! permitted and tells the backend who the person is.
//!
//! The top-level modules are layered: when one imports another, the other never imports
//! it back, directly or through others (`layering_tests` checks every file of `src/`).
//! Low down are small helpers such as `web` and `html`, and `explain` (why a person holds
//! what they hold), then `error` and `state`; above those `forms`, `limits`, `signin`,
//! `bearer` and `visitor`; then the handlers (`pages`,
//! `admin`, `authz`, `gateway`), and `stack` assembles them all.

pub mod accounts;
pub mod admin;
pub mod amr;
pub mod app;
pub mod authz;
pub mod bearer;
pub mod clock;
pub mod config;
pub mod connections;
pub mod edge;
pub mod error;
pub mod explain;
pub(crate) mod forms;
pub mod forwarded;
/// Entry points of the fuzz targets in `fuzz/`; not a stable API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod html;
pub mod identity;
pub mod jwt;
#[cfg(test)]
mod layering_tests;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod mfa;
pub mod pages;
pub mod passkeys;
pub mod pending;
pub mod policy;
pub mod proxy;
pub mod redirect;
pub mod routes;
pub mod session;
pub mod signin;
pub mod stack;
pub mod state;
pub mod tls;
pub mod usergroups;
pub mod visitor;
pub mod web;

pub use app::Gateway;
