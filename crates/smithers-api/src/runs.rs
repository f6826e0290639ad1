//! Runs as front ends show them: a run with its steps, tool calls (each
//! with the kernel's decision), model answers and approvals, and its log.
