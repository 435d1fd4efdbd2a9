//! auth0-bulk: move Auth0 users and their metadata in bulk.
