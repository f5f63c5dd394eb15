//! deskgate's integration tests: a real gateway in front of the real example helpdesk, on
//! loopback, driven as a browser and as an API client would drive them.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on purpose")]

mod account;
mod admin;
mod bearer;
mod browser;
mod cli;
mod edge;
mod emails;
mod faults;
mod forwardauth;
mod forwarding;
mod guests;
mod keys;
mod ldap;
mod limits;
mod managed_redis;
mod methods;
mod metrics;
mod mfa;
mod oidc;
mod organizations;
mod paths;
mod pending;
mod postgres_tls;
mod proxies;
mod proxying;
mod recheck;
mod redirects;
mod registration;
mod reset;
mod routes;
mod saml;
mod scale;
mod sessions;
mod signup;
mod support;
mod tls;
mod tokens;
mod usergroups;
