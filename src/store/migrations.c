/* The embedded schema migrations, one array per backend with the same version
 * numbers (index + 1). A released migration is never edited: change the
 * schema by appending a new one to both arrays. The two dialects differ only
 * where they must: UUID/TIMESTAMPTZ/JSONB on PostgreSQL, STRICT tables with
 * TEXT ids and vtp_time_format() text times on SQLite (which sort
 * lexicographically). schema_migrations itself is created by store.c. */
#include "store/db_int.h"

#include <stddef.h>

const char *const vtp__postgres_migrations[] = {
	/* 1: users, recordings, participants, shares, access log. */
	"CREATE TABLE users ("
	" id UUID PRIMARY KEY,"
	" email VARCHAR(320) NOT NULL UNIQUE,"
	" full_name VARCHAR(255) NOT NULL,"
	" role VARCHAR(20) NOT NULL"
	"  CHECK (role IN ('admin','instructor','student','service')),"
	" password_hash TEXT,"
	" created_at TIMESTAMPTZ NOT NULL DEFAULT now());"

	"CREATE TABLE recordings ("
	" id UUID PRIMARY KEY,"
	" room_id VARCHAR(255) NOT NULL CHECK (room_id <> ''),"
	" title VARCHAR(500) NOT NULL,"
	" description TEXT,"
	" started_by UUID NOT NULL REFERENCES users(id),"
	" status VARCHAR(20) NOT NULL CHECK (status IN"
	"  ('pending','recording','stopped','processing','done','failed')),"
	" file_path VARCHAR(1000),"
	" file_size BIGINT,"
	" duration_seconds DOUBLE PRECISION,"
	" format VARCHAR(50),"
	" video_codec VARCHAR(50),"
	" audio_codec VARCHAR(50),"
	" resolution_width INT DEFAULT 1280,"
	" resolution_height INT DEFAULT 720,"
	" fps INT DEFAULT 30,"
	" bitrate INT DEFAULT 2000,"
	" progress INT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),"
	" error TEXT,"
	" node_id TEXT,"
	" metadata JSONB NOT NULL DEFAULT '{}',"
	" created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
	" stopped_at TIMESTAMPTZ,"
	" completed_at TIMESTAMPTZ,"
	" deleted_at TIMESTAMPTZ);"
	"CREATE INDEX idx_recordings_room_id ON recordings (room_id);"
	"CREATE INDEX idx_recordings_status ON recordings (status);"
	"CREATE INDEX idx_recordings_created_at ON recordings (created_at, id);"
	"CREATE INDEX idx_recordings_started_by ON recordings (started_by);"
	/* One active recording per room, enforced by the database. */
	"CREATE UNIQUE INDEX uq_recordings_active_room ON recordings (room_id)"
	" WHERE status IN ('pending','recording');"

	"CREATE TABLE recording_participants ("
	" id UUID PRIMARY KEY,"
	" recording_id UUID NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" peer_id VARCHAR(255),"
	" user_id UUID REFERENCES users(id),"
	" full_name VARCHAR(255),"
	" role VARCHAR(50),"
	" joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
	" left_at TIMESTAMPTZ);"
	"CREATE INDEX idx_participants_recording"
	" ON recording_participants (recording_id, joined_at);"

	"CREATE TABLE recording_sharing ("
	" id UUID PRIMARY KEY,"
	" recording_id UUID NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" shared_with_user_id UUID REFERENCES users(id),"
	" shared_with_role VARCHAR(50),"
	" permission VARCHAR(20) NOT NULL"
	"  CHECK (permission IN ('view','download','share')),"
	" shared_by UUID REFERENCES users(id),"
	" shared_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
	" CHECK ((shared_with_user_id IS NOT NULL AND shared_with_role IS NULL)"
	"  OR (shared_with_user_id IS NULL AND shared_with_role IS NOT NULL)));"
	"CREATE UNIQUE INDEX uq_sharing_user"
	" ON recording_sharing (recording_id, shared_with_user_id)"
	" WHERE shared_with_user_id IS NOT NULL;"
	"CREATE UNIQUE INDEX uq_sharing_role"
	" ON recording_sharing (recording_id, shared_with_role)"
	" WHERE shared_with_role IS NOT NULL;"
	"CREATE INDEX idx_sharing_user ON recording_sharing (shared_with_user_id);"
	"CREATE INDEX idx_sharing_role ON recording_sharing (shared_with_role);"

	/* No foreign key to recordings: audit entries outlive a purge. */
	"CREATE TABLE recording_access_log ("
	" id UUID PRIMARY KEY,"
	" recording_id UUID NOT NULL,"
	" accessed_by UUID REFERENCES users(id),"
	" access_type VARCHAR(50) NOT NULL,"
	" ip_address VARCHAR(45),"
	" user_agent TEXT,"
	" detail JSONB,"
	" accessed_at TIMESTAMPTZ NOT NULL DEFAULT now());"
	"CREATE INDEX idx_access_log_recording"
	" ON recording_access_log (recording_id, accessed_at);",

	/* 2: a library page of one user (their live recordings, newest first)
	 * is read from this index alone; it supersedes the started_by index. */
	"CREATE INDEX idx_recordings_owner_live"
	" ON recordings (started_by, deleted_at, created_at, id);"
	"DROP INDEX idx_recordings_started_by;",

	/* 3: per-track ingest statistics of a finished capture (JSON array);
	 * recovery finds a node's interrupted recordings by node_id. */
	"ALTER TABLE recordings ADD COLUMN tracks JSONB;"
	"CREATE INDEX idx_recordings_node_active ON recordings (node_id)"
	" WHERE status IN ('pending','recording');",

	/* 4: the processing queue: one job per recording and attempt cycle;
	 * at most one queued/running job per recording. */
	"CREATE TABLE jobs ("
	" id UUID PRIMARY KEY,"
	" recording_id UUID NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" state VARCHAR(20) NOT NULL"
	"  CHECK (state IN ('queued','running','done','failed')),"
	" attempts INT NOT NULL DEFAULT 0,"
	" run_after TIMESTAMPTZ NOT NULL,"
	" claimed_by TEXT,"
	" claimed_at TIMESTAMPTZ,"
	" last_error TEXT,"
	" created_at TIMESTAMPTZ NOT NULL,"
	" updated_at TIMESTAMPTZ NOT NULL);"
	"CREATE UNIQUE INDEX uq_jobs_recording_open ON jobs (recording_id)"
	" WHERE state IN ('queued','running');"
	"CREATE INDEX idx_jobs_queue ON jobs (state, run_after, id);",

	/* 5: the webhook outbox (README "Webhooks"): one row per event, written with
	 * the state change, delivered at least once by any node. next_at is
	 * when it may be tried (again); a claim pushes it one lease ahead, so
	 * a node that dies mid-delivery leaves it to the others. */
	"CREATE TABLE webhook_outbox ("
	" id UUID PRIMARY KEY,"
	" event VARCHAR(40) NOT NULL,"
	" body TEXT NOT NULL,"
	" attempts INT NOT NULL DEFAULT 0,"
	" next_at TIMESTAMPTZ NOT NULL,"
	" delivered_at TIMESTAMPTZ,"
	" last_error TEXT,"
	" created_at TIMESTAMPTZ NOT NULL);"
	"CREATE INDEX idx_webhook_outbox_due ON webhook_outbox (next_at, id)"
	" WHERE delivered_at IS NULL;",

	/* 6: the room event journal (docs/ARCHITECTURE.md "Events"): every status change and
	 * progress step of a recording, written by whichever process made it
	 * (a server, a worker, a compose child), read by every server that
	 * has Socket.IO clients in the room. Rows live for minutes. */
	"CREATE TABLE room_events ("
	" id UUID PRIMARY KEY,"
	" room_id TEXT NOT NULL,"
	" event VARCHAR(40) NOT NULL,"
	" payload TEXT NOT NULL,"
	" created_at TIMESTAMPTZ NOT NULL);"
	"CREATE INDEX idx_room_events_time ON room_events (created_at);",

	/* 7: warnings of a recording (what was lost or never decoded: a full
	 * disk, a lost node), a JSON array; health_probe is the one row
	 * /healthz writes to see that the database takes writes. */
	"ALTER TABLE recordings ADD COLUMN warnings JSONB;"
	"CREATE TABLE health_probe (id INT PRIMARY KEY, probed_at TIMESTAMPTZ NOT NULL);",

	/* 8: the layout the composer is asked for (README "Layouts"); rows
	 * from before it get the default. */
	"ALTER TABLE recordings ADD COLUMN layout VARCHAR(20) NOT NULL DEFAULT 'auto'"
	" CHECK (layout IN ('auto','grid','speaker','presentation','screen'));",

	/* 9: capture in segments across nodes (docs/ARCHITECTURE.md "Capture
	 * in segments"). recording_tracks: each track of a recording, the
	 * node that captures it, how many of its segments are committed to
	 * storage (1..segments, in order) and, once the track ended, the
	 * number of its last segment (NULL while it may grow). nodes: the
	 * last time each node said it was alive, so that a job does not wait
	 * for a dead node's segments. */
	"CREATE TABLE recording_tracks ("
	" recording_id UUID NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" track_id UUID NOT NULL,"
	" node_id VARCHAR(64) NOT NULL,"
	" segments INT NOT NULL DEFAULT 0 CHECK (segments >= 0),"
	" last_segment INT CHECK (last_segment IS NULL OR last_segment >= 1),"
	" committed_at TIMESTAMPTZ,"
	" PRIMARY KEY (recording_id, track_id));"
	"CREATE TABLE nodes (id VARCHAR(64) PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL);",

	/* 10: which node holds each live WHIP session (README "WHIP behind a
	 * load balancer"): a node that gets a DELETE or PATCH for a session it
	 * does not hold forwards it to node_url. Written at POST, removed when
	 * the session ends; a node's rows go when it starts again. */
	"CREATE TABLE whip_sessions ("
	" id UUID PRIMARY KEY,"
	" room_id VARCHAR(255) NOT NULL,"
	" node_id UUID NOT NULL,"
	" node_url VARCHAR(300) NOT NULL,"
	" created_at TIMESTAMPTZ NOT NULL);"
	"CREATE INDEX idx_whip_sessions_node ON whip_sessions (node_id);",

	/* 11: PostgreSQL as the shared truth (docs/ARCHITECTURE.md "Metadata
	 * store"): every statement that changes what a kept answer shows
	 * notifies vtp_changes from its own transaction, so every node (and
	 * the writer) drops its kept answers when it commits, whichever
	 * process made it; room_presence holds the Socket.IO people of every
	 * node for room-members, refreshed by each node's heartbeat. */
	"CREATE FUNCTION vtp_notify_change() RETURNS trigger LANGUAGE plpgsql AS"
	" $$BEGIN PERFORM pg_notify('vtp_changes', TG_TABLE_NAME); RETURN NULL; END$$;"
	"CREATE TRIGGER vtp_changes_users AFTER INSERT OR UPDATE OR DELETE ON users"
	" FOR EACH STATEMENT EXECUTE FUNCTION vtp_notify_change();"
	"CREATE TRIGGER vtp_changes_recordings AFTER INSERT OR UPDATE OR DELETE ON recordings"
	" FOR EACH STATEMENT EXECUTE FUNCTION vtp_notify_change();"
	"CREATE TRIGGER vtp_changes_participants AFTER INSERT OR UPDATE OR DELETE"
	" ON recording_participants FOR EACH STATEMENT EXECUTE FUNCTION vtp_notify_change();"
	"CREATE TRIGGER vtp_changes_sharing AFTER INSERT OR UPDATE OR DELETE ON recording_sharing"
	" FOR EACH STATEMENT EXECUTE FUNCTION vtp_notify_change();"
	"CREATE TABLE room_presence ("
	" room_id TEXT NOT NULL,"
	" node_id TEXT NOT NULL,"
	" sid TEXT NOT NULL,"
	" user_id TEXT NOT NULL,"
	" full_name TEXT NOT NULL,"
	" role TEXT NOT NULL,"
	" joined_at TIMESTAMPTZ NOT NULL,"
	" seen_at TIMESTAMPTZ NOT NULL,"
	" PRIMARY KEY (room_id, node_id, sid));"
	"CREATE INDEX idx_room_presence_node ON room_presence (node_id);"
	"CREATE INDEX idx_room_presence_seen ON room_presence (seen_at);",

	NULL,
};

#define SQLITE_NOW "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))"

const char *const vtp__sqlite_migrations[] = {
	/* 1: users, recordings, participants, shares, access log. */
	"CREATE TABLE users ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" email TEXT NOT NULL UNIQUE CHECK (length(email) <= 320),"
	" full_name TEXT NOT NULL CHECK (length(full_name) <= 255),"
	" role TEXT NOT NULL"
	"  CHECK (role IN ('admin','instructor','student','service')),"
	" password_hash TEXT,"
	" created_at TEXT NOT NULL DEFAULT " SQLITE_NOW ") STRICT;"

	"CREATE TABLE recordings ("
	" id TEXT NOT NULL PRIMARY KEY,"
	/* length() counts characters, like VARCHAR(n) on PostgreSQL. */
	" room_id TEXT NOT NULL CHECK (length(room_id) BETWEEN 1 AND 255),"
	" title TEXT NOT NULL CHECK (length(title) <= 500),"
	" description TEXT,"
	" started_by TEXT NOT NULL REFERENCES users(id),"
	" status TEXT NOT NULL CHECK (status IN"
	"  ('pending','recording','stopped','processing','done','failed')),"
	" file_path TEXT CHECK (length(file_path) <= 1000),"
	" file_size INTEGER,"
	" duration_seconds REAL,"
	" format TEXT CHECK (length(format) <= 50),"
	" video_codec TEXT CHECK (length(video_codec) <= 50),"
	" audio_codec TEXT CHECK (length(audio_codec) <= 50),"
	" resolution_width INTEGER DEFAULT 1280,"
	" resolution_height INTEGER DEFAULT 720,"
	" fps INTEGER DEFAULT 30,"
	" bitrate INTEGER DEFAULT 2000,"
	" progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),"
	" error TEXT,"
	" node_id TEXT,"
	" metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),"
	" created_at TEXT NOT NULL DEFAULT " SQLITE_NOW ","
	" stopped_at TEXT,"
	" completed_at TEXT,"
	" deleted_at TEXT) STRICT;"
	"CREATE INDEX idx_recordings_room_id ON recordings (room_id);"
	"CREATE INDEX idx_recordings_status ON recordings (status);"
	"CREATE INDEX idx_recordings_created_at ON recordings (created_at, id);"
	"CREATE INDEX idx_recordings_started_by ON recordings (started_by);"
	"CREATE UNIQUE INDEX uq_recordings_active_room ON recordings (room_id)"
	" WHERE status IN ('pending','recording');"

	"CREATE TABLE recording_participants ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" recording_id TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" peer_id TEXT CHECK (length(peer_id) <= 255),"
	" user_id TEXT REFERENCES users(id),"
	" full_name TEXT CHECK (length(full_name) <= 255),"
	" role TEXT CHECK (length(role) <= 50),"
	" joined_at TEXT NOT NULL DEFAULT " SQLITE_NOW ","
	" left_at TEXT) STRICT;"
	"CREATE INDEX idx_participants_recording"
	" ON recording_participants (recording_id, joined_at);"

	"CREATE TABLE recording_sharing ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" recording_id TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" shared_with_user_id TEXT REFERENCES users(id),"
	" shared_with_role TEXT CHECK (length(shared_with_role) <= 50),"
	" permission TEXT NOT NULL"
	"  CHECK (permission IN ('view','download','share')),"
	" shared_by TEXT REFERENCES users(id),"
	" shared_at TEXT NOT NULL DEFAULT " SQLITE_NOW ","
	" CHECK ((shared_with_user_id IS NOT NULL AND shared_with_role IS NULL)"
	"  OR (shared_with_user_id IS NULL AND shared_with_role IS NOT NULL)))"
	" STRICT;"
	"CREATE UNIQUE INDEX uq_sharing_user"
	" ON recording_sharing (recording_id, shared_with_user_id)"
	" WHERE shared_with_user_id IS NOT NULL;"
	"CREATE UNIQUE INDEX uq_sharing_role"
	" ON recording_sharing (recording_id, shared_with_role)"
	" WHERE shared_with_role IS NOT NULL;"
	"CREATE INDEX idx_sharing_user ON recording_sharing (shared_with_user_id);"
	"CREATE INDEX idx_sharing_role ON recording_sharing (shared_with_role);"

	/* No foreign key to recordings: audit entries outlive a purge. */
	"CREATE TABLE recording_access_log ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" recording_id TEXT NOT NULL,"
	" accessed_by TEXT REFERENCES users(id),"
	" access_type TEXT NOT NULL CHECK (length(access_type) <= 50),"
	" ip_address TEXT CHECK (length(ip_address) <= 45),"
	" user_agent TEXT,"
	" detail TEXT CHECK (detail IS NULL OR json_valid(detail)),"
	" accessed_at TEXT NOT NULL DEFAULT " SQLITE_NOW ") STRICT;"
	"CREATE INDEX idx_access_log_recording"
	" ON recording_access_log (recording_id, accessed_at);",

	/* 2: a library page of one user (their live recordings, newest first)
	 * is read from this index alone; it supersedes the started_by index. */
	"CREATE INDEX idx_recordings_owner_live"
	" ON recordings (started_by, deleted_at, created_at, id);"
	"DROP INDEX idx_recordings_started_by;",

	/* 3: per-track ingest statistics of a finished capture (JSON array);
	 * recovery finds a node's interrupted recordings by node_id. */
	"ALTER TABLE recordings ADD COLUMN tracks TEXT"
	" CHECK (tracks IS NULL OR json_valid(tracks));"
	"CREATE INDEX idx_recordings_node_active ON recordings (node_id)"
	" WHERE status IN ('pending','recording');",

	/* 4: the processing queue: one job per recording and attempt cycle;
	 * at most one queued/running job per recording. */
	"CREATE TABLE jobs ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" recording_id TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" state TEXT NOT NULL"
	"  CHECK (state IN ('queued','running','done','failed')),"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" run_after TEXT NOT NULL,"
	" claimed_by TEXT,"
	" claimed_at TEXT,"
	" last_error TEXT,"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL) STRICT;"
	"CREATE UNIQUE INDEX uq_jobs_recording_open ON jobs (recording_id)"
	" WHERE state IN ('queued','running');"
	"CREATE INDEX idx_jobs_queue ON jobs (state, run_after, id);",

	/* 5: the webhook outbox (see the PostgreSQL migration 5). */
	"CREATE TABLE webhook_outbox ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" event TEXT NOT NULL,"
	" body TEXT NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_at TEXT NOT NULL,"
	" delivered_at TEXT,"
	" last_error TEXT,"
	" created_at TEXT NOT NULL) STRICT;"
	"CREATE INDEX idx_webhook_outbox_due ON webhook_outbox (next_at, id)"
	" WHERE delivered_at IS NULL;",

	/* 6: the room event journal (see the PostgreSQL migration 6). */
	"CREATE TABLE room_events ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" room_id TEXT NOT NULL,"
	" event TEXT NOT NULL,"
	" payload TEXT NOT NULL,"
	" created_at TEXT NOT NULL) STRICT;"
	"CREATE INDEX idx_room_events_time ON room_events (created_at);",

	/* 7: warnings and health_probe (see the PostgreSQL migration 7). */
	"ALTER TABLE recordings ADD COLUMN warnings TEXT"
	" CHECK (warnings IS NULL OR json_valid(warnings));"
	"CREATE TABLE health_probe (id INTEGER NOT NULL PRIMARY KEY,"
	" probed_at TEXT NOT NULL) STRICT;",

	/* 8: layout (see the PostgreSQL migration 8). */
	"ALTER TABLE recordings ADD COLUMN layout TEXT NOT NULL DEFAULT 'auto'"
	" CHECK (layout IN ('auto','grid','speaker','presentation','screen'));",

	/* 9: segments and nodes (see the PostgreSQL migration 9). */
	"CREATE TABLE recording_tracks ("
	" recording_id TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" track_id TEXT NOT NULL,"
	" node_id TEXT NOT NULL,"
	" segments INTEGER NOT NULL DEFAULT 0 CHECK (segments >= 0),"
	" last_segment INTEGER CHECK (last_segment IS NULL OR last_segment >= 1),"
	" committed_at TEXT,"
	" PRIMARY KEY (recording_id, track_id)) STRICT;"
	"CREATE TABLE nodes (id TEXT NOT NULL PRIMARY KEY, seen_at TEXT NOT NULL) STRICT;",

	/* 10: WHIP session owners (see the PostgreSQL migration 10). */
	"CREATE TABLE whip_sessions ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" room_id TEXT NOT NULL CHECK (length(room_id) BETWEEN 1 AND 255),"
	" node_id TEXT NOT NULL,"
	" node_url TEXT NOT NULL CHECK (length(node_url) <= 300),"
	" created_at TEXT NOT NULL) STRICT;"
	"CREATE INDEX idx_whip_sessions_node ON whip_sessions (node_id);",

	/* 11: room_presence (see the PostgreSQL migration 11; one node on
	 * SQLite keeps its people in memory, the table stays empty). */
	"CREATE TABLE room_presence ("
	" room_id TEXT NOT NULL,"
	" node_id TEXT NOT NULL,"
	" sid TEXT NOT NULL,"
	" user_id TEXT NOT NULL,"
	" full_name TEXT NOT NULL,"
	" role TEXT NOT NULL,"
	" joined_at TEXT NOT NULL,"
	" seen_at TEXT NOT NULL,"
	" PRIMARY KEY (room_id, node_id, sid)) STRICT;"
	"CREATE INDEX idx_room_presence_node ON room_presence (node_id);"
	"CREATE INDEX idx_room_presence_seen ON room_presence (seen_at);",

	NULL,
};

_Static_assert(sizeof(vtp__sqlite_migrations) ==
		       sizeof(vtp__postgres_migrations),
	       "both backends must have the same migration versions");
