-- 0004_admin.sql - sluice-manager's accounts and API tokens.
--
-- admin_user: one row per person who may use the Manager.  role is admin
-- (may change things) or auditor (read only).  pw_hash is an argon2id
-- encoded hash ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"); no clear
-- password is ever stored and no default account exists: the first one is
-- created with `sluicectl admin add`.  failed counts consecutive bad
-- passwords; locked_until is set when it reaches the manager's
-- login_max_failures and blocks logins (even with the right password)
-- until then.
--
-- api_token: tokens for scripts (`Authorization: Bearer ...`).  Only the
-- SHA-256 of the token is stored (hex); the token itself is printed once
-- by `sluicectl admin token`.  Deleting the user deletes its tokens.

CREATE TABLE admin_user (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE
                 CHECK (name ~ '^[A-Za-z0-9_.@-]{1,63}$'),
    role         text NOT NULL CHECK (role IN ('admin', 'auditor')),
    pw_hash      text NOT NULL,
    failed       integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    created      timestamptz NOT NULL DEFAULT now(),
    last_login   timestamptz
);

CREATE TABLE api_token (
    id         bigserial PRIMARY KEY,
    token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    user_id    bigint NOT NULL REFERENCES admin_user (id) ON DELETE CASCADE,
    name       text NOT NULL DEFAULT '',
    created    timestamptz NOT NULL DEFAULT now(),
    last_used  timestamptz
);
CREATE INDEX api_token_user ON api_token (user_id);
