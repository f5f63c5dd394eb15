//! Chat with sales or support: a page, and a WebSocket where an "agent" answers.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{Html, IntoResponse, Response};

use crate::content::permission;
use crate::error::PageError;
use crate::html::page;
use crate::identity::Person;

/// The largest chat message accepted, in bytes.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// A department that can be chatted with.
#[derive(Debug, Clone, Copy)]
enum Department {
    Sales,
    Support,
}

impl Department {
    fn id(self) -> &'static str {
        match self {
            Self::Sales => "sales",
            Self::Support => "support",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Self::Sales => permission::CHAT_SALES,
            Self::Support => permission::CHAT_SUPPORT,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Sales => "Chat with sales",
            Self::Support => "Chat with support",
        }
    }
}

pub(crate) async fn sales_page(person: Person) -> Result<Html<String>, PageError> {
    chat_page(&person, Department::Sales)
}

pub(crate) async fn support_page(person: Person) -> Result<Html<String>, PageError> {
    chat_page(&person, Department::Support)
}

pub(crate) async fn sales_socket(
    person: Person,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    socket(&person, upgrade, Department::Sales)
}

pub(crate) async fn support_socket(
    person: Person,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    socket(&person, upgrade, Department::Support)
}

fn chat_page(person: &Person, department: Department) -> Result<Html<String>, PageError> {
    person.require(department.permission())?;
    // The socket's address is derived from the page's own path, so the chat keeps working
    // when the portal is published under a path prefix or over https.
    let body = "<p>An agent answers here as soon as you write.</p>\n\
        <ul id=\"log\"></ul>\n\
        <form id=\"chat\"><p><label for=\"message\">Message</label> \
        <input id=\"message\" autocomplete=\"off\" required> \
        <button type=\"submit\">Send</button></p></form>\n\
        <noscript><p>The chat needs JavaScript. You can also open a ticket.</p></noscript>\n\
        <script>\n\
        (function () {\n\
          var log = document.getElementById('log');\n\
          var input = document.getElementById('message');\n\
          var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';\n\
          var socket = new WebSocket(scheme + location.host + location.pathname.replace(/\\/?$/, '/ws'));\n\
          function show(text) { var item = document.createElement('li'); item.textContent = text; log.appendChild(item); }\n\
          socket.onopen = function () { show('Connected.'); };\n\
          socket.onmessage = function (event) { show(event.data); };\n\
          socket.onclose = function () { show('Disconnected.'); };\n\
          document.getElementById('chat').addEventListener('submit', function (event) {\n\
            event.preventDefault();\n\
            if (input.value) { show('You: ' + input.value); socket.send(input.value); input.value = ''; }\n\
          });\n\
        })();\n\
        </script>\n";
    Ok(page(person, department.title(), body))
}

fn socket(
    person: &Person,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    department: Department,
) -> Response {
    // The permission is checked before the upgrade: once upgraded, the connection is not
    // looked at again.
    if let Err(refused) = person.require(department.permission()) {
        return refused.into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let account = person.user().map(str::to_owned);
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| converse(socket, department, account))
}

async fn converse(mut socket: WebSocket, department: Department, account: Option<String>) {
    tracing::info!(account = ?account, department = department.id(), "Chat opened");
    while let Some(received) = socket.recv().await {
        let text = match received {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => break,
            // Pings are answered by the socket itself; binary messages mean nothing here.
            Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_)) => continue,
        };
        let answer = format!("{} agent: you said: {}", department.id(), text.as_str());
        if socket.send(Message::Text(answer.into())).await.is_err() {
            break;
        }
    }
    tracing::info!(account = ?account, department = department.id(), "Chat closed");
}
