//! The helpdesk served on loopback, in front of a JWKS server standing in for deskgate.

#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod chat;
mod identity;
mod portal;
mod support;
