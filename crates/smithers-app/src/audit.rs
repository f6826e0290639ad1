//! The audit log: events, verification, proofs, export and delivery,
//! behind the authorization table.
