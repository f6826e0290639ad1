-- When each scheduled workflow of a repository last fired (microseconds
-- since the epoch, UTC): its next firing is the cron's first time after
-- this. A workflow first seen starts here at that moment, so a schedule
-- never fires for times before Smithers knew of it; a process claims a
-- firing by moving the time forward from the value it read, so two
-- processes never fire the same one.
CREATE TABLE github_schedules (
    repository_id BIGINT NOT NULL,
    workflow TEXT NOT NULL,
    fired_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, workflow)
);
