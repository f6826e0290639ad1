//! The audit log as front ends show it: events, verification reports,
//! inclusion proofs and exports.
