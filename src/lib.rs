//! deskgate: an authentication and SSO gateway that stands in front of a helpdesk (or any
//! web app), works out each person's usergroups and permissions, refuses what is not
//! permitted and tells the backend who the person is.

pub mod accounts;
pub mod clock;
pub mod config;
pub mod identity;
pub mod jwt;
pub mod policy;
pub mod session;
pub mod usergroups;
