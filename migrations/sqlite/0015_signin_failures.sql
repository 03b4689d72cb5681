-- Failed dashboard sign-ins, counted in the database so that every
-- collector sharing it (replicas behind one address) enforces one limit:
-- per account and per client address, the failures of the window that
-- began at the first of them. A key is the SHA-256 (hex) of `a:NAME` or
-- `ip:ADDRESS`: bounded in length, and a password typed into the name
-- field is not kept in clear. Rows whose window has ended are deleted
-- with each new failure. SQLite dialect (same semantics as
-- ../postgres/0015_signin_failures.sql).

CREATE TABLE web_signin_failures (
    key_hash TEXT NOT NULL PRIMARY KEY,
    failures INTEGER NOT NULL,
    since_ms INTEGER NOT NULL
);

CREATE INDEX web_signin_failures_since ON web_signin_failures (since_ms);
