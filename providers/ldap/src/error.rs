//! Why the directory could not answer. People are only told "unavailable"; these go to
//! the log, as the source of [`deskgate_provider::AuthError::Unavailable`].

use ldap3::LdapError;

/// A failure talking to the directory, as opposed to an answer about the person.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Every configured server refused, timed out or said it was busy.
    #[error("no directory server answered ({tried} tried)")]
    NoServerAnswered {
        /// How many connection attempts were made.
        tried: usize,
        /// The last failure seen.
        #[source]
        last: Option<Box<LdapError>>,
    },
    /// The service account's bind was refused: a configuration problem, not an outage.
    #[error("the service account bind to {server} was refused with result {rc}: {diagnostic}")]
    ServiceBindRefused {
        /// The server that refused.
        server: String,
        /// The LDAP result code.
        rc: u32,
        /// The server's diagnostic message.
        diagnostic: String,
    },
    /// An operation got an error answer that says nothing about the person.
    #[error("{operation} on {server} failed")]
    Operation {
        /// What was being done (`user search`, `group search`, `user bind`).
        operation: &'static str,
        /// The server that was asked.
        server: String,
        /// What went wrong.
        #[source]
        source: Box<LdapError>,
    },
    /// The server sent an entry that could not be decoded, or lacks the subject attribute.
    #[error("malformed entry from {server}: {detail}")]
    MalformedEntry {
        /// The server that sent it.
        server: String,
        /// What was wrong with it.
        detail: String,
    },
}

pub(crate) use deskgate_provider::error_chain as chain;
