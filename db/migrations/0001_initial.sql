-- 0001_initial.sql - sluice's first schema: quarantine, lists, maps, users.
--
-- Applied by `sluicectl db migrate` inside one transaction, which also
-- records the version in schema_version; never run it by hand.  Works on
-- PostgreSQL 13 and later.  Addresses and domains are stored in lower case
-- (the CHECKs say so), so look-ups are plain equality on an index.

-- ---------------------------------------------------------------- quarantine

-- What happened to one recipient of a quarantined message.
CREATE TYPE rcpt_status AS ENUM ('quarantined', 'released', 'deleted',
                                 'delivered');

CREATE TABLE quarantine_message (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node        text        NOT NULL,  -- gateway that stored it (hostname)
    msg_id      text        NOT NULL,  -- sluice's message id (logs)
    mta_id      text        NOT NULL DEFAULT '', -- the MTA's queue id
    received_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,           -- NULL: the site's default expiry
    sender      text        NOT NULL,  -- envelope sender, '' = null sender
    header_from text        NOT NULL DEFAULT '',
    subject     text        NOT NULL DEFAULT '',  -- decoded, UTF-8
    client_addr inet,                  -- NULL when the MTA did not say
    client_name text        NOT NULL DEFAULT '',
    helo        text        NOT NULL DEFAULT '',
    size        bigint      NOT NULL CHECK (size >= 0),
    score       double precision NOT NULL DEFAULT 0,
    reason      text        NOT NULL DEFAULT '',  -- why the policy chose it
    -- The message as it would have been delivered.  Compressed by the
    -- server (TOAST), not by the gateway: see README "Database".
    raw         bytea       NOT NULL,
    -- One row per message and node: a retried store (the MTA re-sent a
    -- message whose commit answer was lost) is an upsert, not a duplicate.
    UNIQUE (node, msg_id)
);
CREATE INDEX quarantine_message_received ON quarantine_message (received_at);
CREATE INDEX quarantine_message_sender ON quarantine_message (sender);
CREATE INDEX quarantine_message_expires ON quarantine_message (expires_at)
    WHERE expires_at IS NOT NULL;

-- lz4 where the server has it (PostgreSQL 14+ built with lz4, as Debian's
-- is): as small as pglz here and faster to write; else the default pglz.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 AND EXISTS (
        SELECT 1 FROM pg_settings
         WHERE name = 'default_toast_compression'
           AND 'lz4' = ANY (enumvals)) THEN
        EXECUTE 'ALTER TABLE quarantine_message '
                'ALTER COLUMN raw SET COMPRESSION lz4';
    END IF;
END
$$;

CREATE TABLE quarantine_rcpt (
    message_id bigint      NOT NULL
               REFERENCES quarantine_message (id) ON DELETE CASCADE,
    rcpt       text        NOT NULL CHECK (rcpt = lower(rcpt)),
    status     rcpt_status NOT NULL DEFAULT 'quarantined',
    status_at  timestamptz NOT NULL DEFAULT now(),
    status_by  text        NOT NULL DEFAULT '',  -- who released/deleted
    PRIMARY KEY (message_id, rcpt)
);
CREATE INDEX quarantine_rcpt_rcpt ON quarantine_rcpt (rcpt, status);

-- The symbols (findings) that led to the verdict.
CREATE TABLE quarantine_symbol (
    message_id bigint NOT NULL
               REFERENCES quarantine_message (id) ON DELETE CASCADE,
    name       text   NOT NULL,
    score      double precision NOT NULL DEFAULT 0,
    reason     text   NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, name)
);

-- ---------------------------------------------------------------- users, maps

CREATE TYPE user_role AS ENUM ('admin', 'group_admin', 'user');

CREATE TABLE app_user (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login         text      NOT NULL UNIQUE,
    role          user_role NOT NULL DEFAULT 'user',
    email         text      NOT NULL DEFAULT '',
    -- A KDF string in its own self-describing format ($argon2id$..., or
    -- $scrypt$...); NULL: no password login (e.g. digest links only).
    password_hash text,
    disabled      boolean   NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE domain_group (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE
);

-- domain -> group (which group administrators own which domains)
CREATE TABLE map_domain_group (
    domain   text   PRIMARY KEY CHECK (domain = lower(domain)),
    group_id bigint NOT NULL REFERENCES domain_group (id) ON DELETE CASCADE
);

-- group administrators
CREATE TABLE group_admin (
    group_id bigint NOT NULL REFERENCES domain_group (id) ON DELETE CASCADE,
    user_id  bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

-- recipient address -> the user who owns its quarantine and lists
-- (aliases: several addresses, one user)
CREATE TABLE map_rcpt_user (
    address text   PRIMARY KEY CHECK (address = lower(address)),
    user_id bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE
);
CREATE INDEX map_rcpt_user_user ON map_rcpt_user (user_id);

-- ---------------------------------------------------------------- lists

CREATE TYPE list_kind AS ENUM ('allow', 'block');
CREATE TYPE list_scope AS ENUM ('site', 'domain', 'user');

-- One entry matches on exactly one of: the sender's address, the sender's
-- domain (with or without its subdomains), or the client's network.
CREATE TABLE list_entry (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          list_kind  NOT NULL,
    scope         list_scope NOT NULL,
    -- '' for site; the recipient domain for domain; the user's recipient
    -- address for user
    owner         text       NOT NULL DEFAULT '' CHECK (owner = lower(owner)),
    sender_addr   text       CHECK (sender_addr = lower(sender_addr)),
    sender_domain text       CHECK (sender_domain = lower(sender_domain)),
    subdomains    boolean    NOT NULL DEFAULT false,
    client_net    cidr,
    comment       text       NOT NULL DEFAULT '',
    created_by    text       NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(sender_addr, sender_domain, client_net) = 1),
    CHECK ((scope = 'site') = (owner = '')),
    CHECK (NOT subdomains OR sender_domain IS NOT NULL)
);
CREATE UNIQUE INDEX list_entry_unique ON list_entry (
    kind, scope, owner, coalesce(sender_addr, ''), coalesce(sender_domain, ''),
    subdomains, coalesce(client_net::text, ''));
CREATE INDEX list_entry_addr ON list_entry (sender_addr)
    WHERE sender_addr IS NOT NULL;
CREATE INDEX list_entry_domain ON list_entry (sender_domain)
    WHERE sender_domain IS NOT NULL;
-- "which networks contain this address": client_net >>= $1
CREATE INDEX list_entry_net ON list_entry USING gist (client_net inet_ops)
    WHERE client_net IS NOT NULL;
