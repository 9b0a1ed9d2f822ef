//! tokenward — OAuth 2.0 client-credentials tokens, done once.
