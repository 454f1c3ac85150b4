-- 0005_manager.sql - what sluice-manager's API keeps: policy script
-- versions and the dashboard's per-minute message counts.
--
-- Applied by `sluicectl db migrate` in one transaction (see 0001).

-- Every policy script saved through the Manager (POST /api/policy), after
-- it compiled and the engine applied it; the newest is the one in effect
-- unless the file was edited outside the Manager since.
CREATE TABLE policy_version (
    version  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    script   text        NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now(),
    saved_by text        NOT NULL DEFAULT ''  -- the Manager account
);

-- The dashboard's samples: per gateway (node = host name) and minute,
-- the messages the engine finished and their outcome.  The Manager adds
-- to the current minute every 10 s and reads the last 24 hours back when
-- it starts; rows older than 8 days are removed by the Manager.
CREATE TABLE stats_minute (
    node        text        NOT NULL,
    t           timestamptz NOT NULL,  -- start of the minute (UTC)
    messages    bigint      NOT NULL DEFAULT 0,
    spam        bigint      NOT NULL DEFAULT 0,  -- score >= tag_score
    quarantined bigint      NOT NULL DEFAULT 0,
    rejected    bigint      NOT NULL DEFAULT 0,
    accepted    bigint      NOT NULL DEFAULT 0,
    tempfailed  bigint      NOT NULL DEFAULT 0,
    discarded   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (node, t)
);
CREATE INDEX stats_minute_t ON stats_minute (t);
