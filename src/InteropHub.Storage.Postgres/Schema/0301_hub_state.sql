-- Small named values the hub's background jobs keep across restarts (e.g. the recognition catalogue version whose
-- re-tagging pass has completed).
CREATE TABLE hub_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
