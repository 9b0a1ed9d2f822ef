//! The OAuth layer: what a token is ([`token`]), how one is asked for and read
//! ([`endpoint`], [`response`], [`jwt`], [`discovery`]), and how the client proves who it is
//! ([`credential`], [`assertion`], [`assertion_file`]), and DPoP proofs of possession
//! ([`dpop`]). It talks HTTP through `crate::http` and keeps no cache.

#![forbid(unsafe_code)]

pub(crate) mod assertion;
pub(crate) mod assertion_file;
pub(crate) mod credential;
pub(crate) mod discovery;
pub(crate) mod dpop;
pub(crate) mod endpoint;
#[cfg(test)]
mod endpoint_tests;
mod jwt;
pub(crate) mod response;
pub(crate) mod token;

pub(crate) use assertion::SigningKey;
pub(crate) use credential::Credential;
pub(crate) use endpoint::{EndpointSettings, TokenEndpoint, TokenLocation};
pub(crate) use token::{AccessToken, Fetched, SlotKey, Timing, TokenRequest};
