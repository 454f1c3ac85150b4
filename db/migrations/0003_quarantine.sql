-- 0003_quarantine.sql - what the quarantine stage needs to store a message
-- exactly once.
--
-- 0001 made rows unique per (node, msg_id), but msg_id is the engine's id
-- of one SMTP transaction: when the MTA re-sends a message because the
-- answer to a committed store was lost (timeout, crash, connection gone),
-- the new transaction has a new id and the row would be stored twice.
-- dedup_key is the same for every transaction of one queued message: a
-- SHA-256 over the MTA's queue id, the envelope sender, the Message-ID and
-- the body (see plugins/quarantine/quarantine.c).  A retried store finds
-- the first row and only adds recipients it did not have.  NULL for rows
-- stored before this version.

ALTER TABLE quarantine_message ADD COLUMN dedup_key text;
CREATE UNIQUE INDEX quarantine_message_dedup ON quarantine_message (dedup_key)
    WHERE dedup_key IS NOT NULL;

-- sluicectl quarantine list --rcpt and expire: by recipient, by status time
CREATE INDEX quarantine_rcpt_status_at ON quarantine_rcpt (status, status_at);
