-- Nothing to do on SQLite: a process's own changes to runs are broadcast
-- in that process, and other processes see the database's files change
-- (see run_changes.rs). The migration exists so both backends share
-- version numbers.
SELECT 1;
