//! Egress: the only way out of a sandbox, through Smithers' proxy.

mod address;
mod allowlist;
mod proxy;

pub use address::refusal as address_refusal;
pub use allowlist::{Allowlist, HostPattern};
pub use proxy::{
    AddressCheck, BoxFuture, EgressEvent, EgressProxy, EgressRecorder, EgressSettings, LogRecorder,
    Resolve, SystemResolver, Target, parse_target,
};
