//! Secrets and grants: the secrets service of the store, behind the
//! authorization table.
