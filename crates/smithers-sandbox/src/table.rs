//! The sandboxes a provider holds, by id, behind one lock that callers
//! never hold across an await (they take what they need and let go).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::Error;
use crate::provider::SandboxId;

pub(crate) struct SandboxTable<S> {
    map: Mutex<HashMap<SandboxId, S>>,
}

impl<S> SandboxTable<S> {
    pub fn new() -> SandboxTable<S> {
        SandboxTable {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<SandboxId, S>>, Error> {
        self.map
            .lock()
            .map_err(|_| Error::Invalid("the sandbox table is poisoned".into()))
    }

    pub fn insert(&self, id: SandboxId, sandbox: S) -> Result<(), Error> {
        self.lock()?.insert(id, sandbox);
        Ok(())
    }

    pub fn remove(&self, id: &SandboxId) -> Result<S, Error> {
        self.lock()?
            .remove(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }

    /// Runs `f` on the sandbox `id` under the lock.
    pub fn with<T>(
        &self,
        id: &SandboxId,
        f: impl FnOnce(&mut S) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut map = self.lock()?;
        let sandbox = map
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        f(sandbox)
    }

    /// Everything left, for a provider going away.
    pub fn drain(&mut self) -> Vec<(SandboxId, S)> {
        match self.map.get_mut() {
            Ok(map) => map.drain().collect(),
            Err(_) => Vec::new(),
        }
    }
}
