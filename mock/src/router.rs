//! Which handler a request goes to, and the bookkeeping every request gets first:
//! logging, counting, faults and delays.

use std::time::Duration;

use crate::fault::{FaultKind, Target};
use crate::request::Request;
use crate::response::Response;
use crate::server::Shared;
use crate::{admin, api, token};

/// The paths served by the token endpoint (IdentityServer, Auth0, Cognito, generic styles).
pub const TOKEN_PATHS: [&str; 4] = ["/oauth/token", "/connect/token", "/oauth2/token", "/token"];

/// What the connection does with a request.
pub enum Reply {
    Respond(Response),
    /// Answer, close, then stop the whole server (`POST /admin/shutdown`).
    RespondThenStop(Response),
    /// Never answer; hold the socket until the hang limit or a stop.
    Hang,
    /// Close without answering.
    Close,
    /// Write these bytes as they are, then close.
    Raw(Vec<u8>),
}

/// Token path, counted API path (`/api`, `/api/...`, `/graphql`), or neither.
fn target(path: &str) -> Option<Target> {
    if TOKEN_PATHS.contains(&path) {
        Some(Target::Token)
    } else if path == "/api" || path.starts_with("/api/") || path == "/graphql" {
        Some(Target::Api)
    } else {
        None
    }
}

pub fn route(shared: &Shared, request: &Request) -> Reply {
    let path = request.path();
    if path == "/admin" || path.starts_with("/admin/") {
        return admin::handle(shared, request);
    }
    let target = target(path);
    let (fault, delay, skew) = {
        let mut state = shared.state();
        // Everything that is not a token path is logged as "api" (discovery and 404s too),
        // but only /api and /graphql count as API requests.
        state.record(target.unwrap_or(Target::Api), request);
        match target {
            Some(Target::Token) => state.stats.token_requests += 1,
            Some(Target::Api) => state.stats.api_requests += 1,
            None => {}
        }
        let fault = target.and_then(|t| state.take_fault(t));
        let delay = match (&fault, target) {
            (None, Some(Target::Token)) => Duration::from_millis(state.config.token_delay_ms),
            _ => Duration::ZERO,
        };
        (fault, delay, state.config.clock_skew_secs)
    };
    // Sleeps happen here, outside the lock, and end early when the server stops.
    if let Some(fault) = fault {
        if !shared.sleep(fault.delay) {
            return Reply::Close;
        }
        return match (fault.response(skew), fault.kind) {
            (Some(response), _) => Reply::Respond(response),
            (None, FaultKind::Hang) => Reply::Hang,
            (None, FaultKind::Raw) => Reply::Raw(fault.body.into_bytes()),
            (None, _) => Reply::Close,
        };
    }
    // Delayed before issuing, so a slow answer still carries a full-lifetime token.
    if !shared.sleep(delay) {
        return Reply::Close;
    }
    let response = match target {
        Some(Target::Token) => token::handle(shared, request),
        Some(Target::Api) => api::handle(shared, request),
        None => api::other(shared, request),
    };
    if let (Some(target), 200..=299) = (target, response.status) {
        shared.state().note_success(target);
    }
    Reply::Respond(response)
}
