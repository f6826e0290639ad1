//! Secrets and grants as front ends show them: metadata, versions, key
//! usage and grants; never a value except the one `secrets get` returns.
