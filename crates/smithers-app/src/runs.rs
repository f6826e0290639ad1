//! Runs: start, carry out, follow, resume and cancel, behind the
//! authorization table.
