//! Which server a sign-in talks to, and over which connection: the shared service
//! connection (kept, re-established when it breaks, moved back to a preferred server once
//! that may be retried) and the one-off connections that carry user binds.

use std::sync::{MutexGuard, PoisonError};

use ldap3::LdapError;

use crate::error::DirectoryError;
use crate::servers::{Health, is_server_failure, is_unavailable_code};
use crate::{Bind, Ldap, Service, ad};

impl Ldap {
    /// The shared service connection: the cached one while it is open and no preferred
    /// server has come back, else a new one.
    pub(crate) async fn service(&self) -> Result<Service, DirectoryError> {
        let mut slot = self.inner.service.lock().await;
        let now = self.inner.clock.now();
        if let Some(current) = slot.as_mut() {
            if current.ldap.is_closed() {
                tracing::debug!(
                    provider = %self.inner.settings.provider,
                    server = %self.url(current.server),
                    "Service connection closed; reconnecting"
                );
                *slot = None;
            } else if self.health().preferred_available(current.server, now) {
                // Only servers ahead of the current one are tried, so a failed attempt
                // keeps the working connection.
                let ahead: Vec<usize> =
                    self.health().order(now).into_iter().filter(|&i| i < current.server).collect();
                if let Ok(better) = self.connect_service(&ahead).await {
                    tracing::info!(
                        provider = %self.inner.settings.provider,
                        server = %self.url(better.server),
                        "Returning to a preferred directory server"
                    );
                    *current = better;
                }
                return Ok(current.clone());
            } else {
                return Ok(current.clone());
            }
        }
        let order = self.health().order(now);
        let fresh = self.connect_service(&order).await?;
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// Connects and binds as the service account, trying `candidates` in order.
    pub(crate) async fn connect_service(&self, candidates: &[usize]) -> Result<Service, DirectoryError> {
        let settings = &self.inner.settings;
        let mut last = None;
        for &i in candidates {
            let url = self.url(i);
            let mut ldap = match self.inner.connector.open(url).await {
                Ok(ldap) => ldap,
                Err(error) => {
                    self.server_down(i, &error);
                    last = Some(Box::new(error));
                    continue;
                }
            };
            let bound = ldap
                .with_timeout(settings.timeout)
                .simple_bind(&settings.bind_dn, settings.bind_password.expose())
                .await;
            match bound {
                Ok(result) if result.rc == 0 => {
                    self.health().mark_up(i);
                    return Ok(Service { ldap, server: i });
                }
                Ok(result) if !is_unavailable_code(result.rc) => {
                    tracing::error!(
                        provider = %settings.provider,
                        server = %url,
                        rc = result.rc,
                        diagnostic = %result.text,
                        "The directory refused the service account (check bind_dn and its password)"
                    );
                    return Err(DirectoryError::ServiceBindRefused {
                        server: url.to_owned(),
                        rc: result.rc,
                        diagnostic: result.text,
                    });
                }
                Ok(result) => {
                    let error = LdapError::LdapResult { result };
                    self.server_down(i, &error);
                    last = Some(Box::new(error));
                }
                Err(error) => {
                    self.server_down(i, &error);
                    last = Some(Box::new(error));
                }
            }
        }
        Err(DirectoryError::NoServerAnswered { tried: candidates.len(), last })
    }

    /// Binds as the user on a connection of its own, preferring the server that found the
    /// entry. Returns the server that answered, or the reason the bind was refused.
    pub(crate) async fn bind_user(
        &self,
        preferred: usize,
        dn: &str,
        password: &str,
    ) -> Result<Bind, DirectoryError> {
        let settings = &self.inner.settings;
        let now = self.inner.clock.now();
        let mut candidates = vec![preferred];
        candidates.extend(self.health().order(now).into_iter().filter(|&i| i != preferred));
        let mut last = None;
        for &i in &candidates {
            let url = self.url(i);
            let mut ldap = match self.inner.connector.open(url).await {
                Ok(ldap) => ldap,
                Err(error) => {
                    self.server_down(i, &error);
                    last = Some(Box::new(error));
                    continue;
                }
            };
            let bound = ldap.with_timeout(settings.timeout).simple_bind(dn, password).await;
            // The connection only ever carried this bind; close it either way.
            let _ = ldap.unbind().await;
            let result = match bound {
                Ok(result) => result,
                Err(error) => {
                    self.server_down(i, &error);
                    last = Some(Box::new(error));
                    continue;
                }
            };
            if result.rc == 0 {
                return Ok(Bind::Accepted(i));
            }
            if let Some(refusal) = ad::bind_refusal(result.rc, &result.text) {
                return Ok(Bind::Refused(refusal, ad::data_code(&result.text)));
            }
            let error = LdapError::LdapResult { result };
            if is_server_failure(&error) {
                self.server_down(i, &error);
                last = Some(Box::new(error));
                continue;
            }
            return Err(DirectoryError::Operation {
                operation: "user bind",
                server: url.to_owned(),
                source: Box::new(error),
            });
        }
        Err(DirectoryError::NoServerAnswered { tried: candidates.len(), last })
    }

    /// Marks the server of a failed service connection down and forgets the connection.
    pub(crate) async fn service_failed(&self, service: &Service, error: &LdapError) {
        self.server_down(service.server, error);
        let mut slot = self.inner.service.lock().await;
        if slot.as_ref().is_some_and(|s| s.server == service.server) {
            *slot = None;
        }
    }

    pub(crate) fn server_down(&self, i: usize, error: &LdapError) {
        let s = &self.inner.settings;
        tracing::warn!(
            provider = %s.provider,
            server = %self.url(i),
            %error,
            retry_after_secs = s.retry_after.as_secs(),
            "Directory server did not answer; skipping it for a while"
        );
        self.health().mark_down(i, self.inner.clock.now());
    }

    pub(crate) fn health(&self) -> MutexGuard<'_, Health> {
        // The guarded data stays consistent even if a holder panicked.
        self.inner.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn url(&self, i: usize) -> &str {
        self.inner.settings.urls.get(i).map(String::as_str).unwrap_or("")
    }
}
