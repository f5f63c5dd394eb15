//! deskgate: an authentication and SSO gateway that stands in front of a helpdesk (or any
//! web app), works out each person's usergroups and permissions, refuses what is not
//! permitted and tells the backend who the person is.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod authz;
pub mod clock;
pub mod config;
pub mod connections;
pub mod edge;
pub mod error;
pub mod forwarded;
/// Entry points of the fuzz targets in `fuzz/`; not a stable API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod identity;
pub mod jwt;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod mfa;
pub mod pages;
pub mod pending;
pub mod policy;
pub mod proxy;
pub mod redirect;
pub mod session;
pub mod signin;
pub mod stack;
pub mod state;
pub mod tls;
pub mod usergroups;
pub mod visitor;
pub mod web;

pub use app::Gateway;
