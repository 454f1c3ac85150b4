-- 0002_reports.sql - report counters, and list change notification.
--
-- Applied by `sluicectl db migrate` in one transaction (see 0001).

-- Daily counters per gateway and recipient domain ('' = all domains):
-- messages, spam, quarantined, rejected, ... as the stages count them.
-- Writers add with INSERT ... ON CONFLICT DO UPDATE SET value = value + n.
CREATE TABLE report_counter (
    day     date   NOT NULL,
    node    text   NOT NULL,
    domain  text   NOT NULL DEFAULT '' CHECK (domain = lower(domain)),
    counter text   NOT NULL,
    value   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, node, domain, counter)
);

-- Every change to the lists bumps a generation and notifies the channel
-- sluice_lists, so the workers' cached copies refresh without a restart
-- (LISTEN, or a cheap poll of list_generation).
CREATE TABLE list_generation (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint      NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO list_generation DEFAULT VALUES;

CREATE FUNCTION list_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    g bigint;
BEGIN
    UPDATE list_generation SET generation = generation + 1,
                               changed_at = now()
     RETURNING generation INTO g;
    PERFORM pg_notify('sluice_lists', g::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER list_entry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON list_entry
    FOR EACH STATEMENT EXECUTE FUNCTION list_changed();
