-- dovecot-dkim: the SigningTable and the KeyTable in PostgreSQL, read by the
-- submission plugin through Dovecot's dict (dovecot-dkim-submission(7),
-- TABLES IN A DICT) and kept by dkim-keys(1).  Dovecot's dict server maps the
-- dict keys onto these tables with the map shipped for each Dovecot version
-- (dovecot-2.3/dkim-dict-pgsql.conf.ext, dovecot-2.4/92-dkim-dict.conf).
--
-- Create a database and a role for Dovecot, then run this file as that role:
--
--   createuser --pwprompt dovecot
--   createdb --owner=dovecot dkim
--   psql -h localhost -U dovecot -d dkim -f dkim-dict-pgsql.sql
--
-- Rows can be written with plain SQL (a hosting panel) or through the dict
-- ("doveadm dict set", which dkim-keys uses); both end up in the same rows.
-- Every server reads the same rows, each through its own dict server.
--
-- Everything is lowercase: the plugin looks up lowercase From addresses,
-- domains and key names.

-- dict key shared/dkim/signing/<pattern>.  <pattern> is a From address
-- (alice@example.com), a domain (example.com: also its subdomains that have
-- no row of their own) or '*' (everything else); the most specific row
-- applies.  keynames lists key names (rows of dkim_key) separated by commas:
-- one signature per key.  An empty list means: do not sign.
CREATE TABLE dkim_signing (
	pattern  text PRIMARY KEY CHECK (pattern = lower(pattern)),
	keynames text NOT NULL
);

-- dict key shared/dkim/key/<name>.  value is DOMAIN:SELECTOR:KEY, KEY the
-- path of a key file on every server, or the private key itself in PEM
-- (then it never touches the servers' disks; keep this table away from
-- anyone who must not sign for these domains).
CREATE TABLE dkim_key (
	name     text PRIMARY KEY CHECK (name = lower(name) AND name <> ''),
	value    text NOT NULL,
	-- for panels and reports; the dict reads value only
	domain   text GENERATED ALWAYS AS (split_part(value, ':', 1)) STORED,
	selector text GENERATED ALWAYS AS (split_part(value, ':', 2)) STORED
);
CREATE INDEX dkim_key_domain ON dkim_key (domain);

-- dict key shared/dkim/note/<name>: what dkim-keys(1) records about a key
-- (when it was made, switched away from, when it may be removed).
CREATE TABLE dkim_note (
	name text PRIMARY KEY,
	note text NOT NULL
);

-- An example, in plain SQL (dkim-keys rotate does the same through the dict):
--
--   INSERT INTO dkim_key (name, value) VALUES
--     ('20260101._domainkey.example.com',
--      'example.com:20260101:-----BEGIN PRIVATE KEY-----
--   MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC...
--   -----END PRIVATE KEY-----');
--   INSERT INTO dkim_signing (pattern, keynames) VALUES
--     ('example.com', '20260101._domainkey.example.com');
