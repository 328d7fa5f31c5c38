/* Store tests: one table of cases run against both backends, SQLite (a
 * temporary file) and PostgreSQL (a database created for this run on the
 * server whose URL is in the file named by VTP_TEST_PG_URL_FILE; missing
 * means failure, not skip). Cases use fresh users and room ids, so they do
 * not depend on each other beyond the migration done in the group setup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timeutil.h"
#include "store/db_int.h"
#include "store/store.h"

#define T0 INT64_C(1795000000123) /* 2026-11-18T..., with milliseconds */

typedef struct fixture {
	const char *backend;
	vtp_store *s;
	int first_applied;
	char url[1024];
	/* SQLite */
	char dir[256];
	/* PostgreSQL */
	char admin_url[1024];
	char dbname[64];
} fixture;

/* ---- helpers ------------------------------------------------------------ */

/* Number of embedded migrations (the same on both backends). */
static int migration_count(void)
{
	int n = 0;

	while (vtp__sqlite_migrations[n])
		n++;
	return n;
}

static void unique(char *out, size_t n, const char *prefix)
{
	char hex[17];

	vtp_random_hex(hex, 8);
	snprintf(out, n, "%s-%s", prefix, hex);
}

static void make_user(fixture *fx, const char *role, char id[VTP_UUID_BUFLEN])
{
	char email[128], local[64];
	vtp_user u = {0};

	unique(local, sizeof(local), role);
	snprintf(email, sizeof(email), "%s@Example.COM", local);
	vtp_uuid_v4(u.id);
	u.email = email;
	u.full_name = "Test User";
	u.role = (char *)role;
	u.password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA";
	assert_int_equal(vtp_store_user_insert(fx->s, &u), 0);
	memcpy(id, u.id, VTP_UUID_BUFLEN);
}

static void rec_init(vtp_recording *r, const char *room, const char *starter,
		     const char *status, int64_t created_at)
{
	memset(r, 0, sizeof(*r));
	vtp_uuid_v4(r->id);
	r->room_id = (char *)room;
	r->title = "Lecture";
	memcpy(r->started_by, starter, VTP_UUID_BUFLEN);
	r->status = (char *)status;
	r->file_size = -1;
	r->duration_seconds = -1;
	r->format = "webm";
	r->video_codec = "vp8";
	r->audio_codec = "opus";
	r->resolution_width = 1280;
	r->resolution_height = 720;
	r->fps = 30;
	r->bitrate = 2000;
	r->created_at = created_at;
}

static void make_rec(fixture *fx, const char *room, const char *starter,
		     const char *status, int64_t created_at,
		     char id[VTP_UUID_BUFLEN])
{
	vtp_recording r;

	rec_init(&r, room, starter, status, created_at);
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), 0);
	memcpy(id, r.id, VTP_UUID_BUFLEN);
}

static int64_t list_total(fixture *fx, const vtp_recording_filter *f)
{
	vtp_recording *arr = NULL;
	size_t n = 0;
	int64_t total = -1;

	assert_int_equal(vtp_store_recording_list(fx->s, f, &arr, &n, &total),
			 0);
	vtp_recording_free_array(arr, n);
	return total;
}

static void assert_json_equal(const char *a, const char *b)
{
	json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);

	assert_non_null(ja);
	assert_non_null(jb);
	assert_true(json_equal(ja, jb));
	json_decref(ja);
	json_decref(jb);
}

/* ---- cases -------------------------------------------------------------- */

static void test_migrate_idempotent(void **state)
{
	fixture *fx = *state;
	int applied = -1;

	assert_int_equal(fx->first_applied, migration_count());
	assert_int_equal(vtp_store_migrate(fx->s, &applied), 0);
	assert_int_equal(applied, 0);
	assert_int_equal(vtp_store_ping(fx->s), 0);
	assert_string_equal(vtp_store_backend(fx->s), fx->backend);
}

/* SQLite: the database (and its WAL) are private to the owner; relative
 * paths resolve from the working directory. */
static void test_sqlite_files(void **state)
{
	fixture *fx = *state;
	char path[400], cwd[400];
	vtp_store *s = NULL;
	struct stat st;
	char err[256];
	int applied = 0;

	if (strcmp(fx->backend, "sqlite") != 0)
		return;
	snprintf(path, sizeof(path), "%s/sub/vtp.db", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/sub/vtp.db-wal", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(fx->dir), 0);
	assert_int_equal(vtp_store_open("sqlite://./data/rel.db", 2, &s, err,
					sizeof(err)),
			 0);
	assert_int_equal(vtp_store_migrate(s, &applied), 0);
	assert_int_equal(applied, migration_count());
	vtp_store_free(s);
	assert_int_equal(chdir(cwd), 0);
	snprintf(path, sizeof(path), "%s/data/rel.db", fx->dir);
	assert_int_equal(stat(path, &st), 0);
}

static void test_users(void **state)
{
	fixture *fx = *state;
	char id[VTP_UUID_BUFLEN], email[128], upper[128];
	int64_t before = 0, after = 0;
	vtp_user u = {0}, got;

	assert_int_equal(vtp_store_user_count(fx->s, &before), 0);
	unique(email, sizeof(email), "alice");
	strncat(email, "@example.com", sizeof(email) - strlen(email) - 1);
	vtp_uuid_v4(id);
	memcpy(u.id, id, sizeof(id));
	u.email = email;
	u.full_name = "Alice Ünicode";
	u.role = "instructor";
	u.created_at = T0;
	assert_int_equal(vtp_store_user_insert(fx->s, &u), 0);
	assert_int_equal(vtp_store_user_count(fx->s, &after), 0);
	assert_int_equal(after, before + 1);

	/* Same email in another case: conflict. */
	for (size_t i = 0; i <= strlen(email); i++)
		upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z'
					  ? email[i] - 32
					  : email[i]);
	vtp_uuid_v4(u.id);
	u.email = upper;
	assert_int_equal(vtp_store_user_insert(fx->s, &u), VTP_ECONFLICT);
	/* Same id: conflict too. */
	memcpy(u.id, id, sizeof(id));
	u.email = "other-unique@example.com";
	assert_int_equal(vtp_store_user_insert(fx->s, &u), VTP_ECONFLICT);
	/* Invalid role is rejected by the schema. */
	vtp_uuid_v4(u.id);
	u.role = "superuser";
	assert_int_equal(vtp_store_user_insert(fx->s, &u), VTP_EINVAL);

	assert_int_equal(vtp_store_user_by_email(fx->s, upper, &got), 0);
	assert_string_equal(got.id, id);
	assert_string_equal(got.email, email);
	assert_string_equal(got.full_name, "Alice Ünicode");
	assert_string_equal(got.role, "instructor");
	assert_null(got.password_hash);
	assert_int_equal(got.created_at, T0);
	vtp_user_clear(&got);

	assert_int_equal(vtp_store_user_by_id(fx->s, id, &got), 0);
	assert_string_equal(got.email, email);
	vtp_user_clear(&got);

	assert_int_equal(vtp_store_user_by_email(fx->s, "nobody@example.com",
						 &got),
			 VTP_ENOTFOUND);
	vtp_uuid_v4(u.id);
	assert_int_equal(vtp_store_user_by_id(fx->s, u.id, &got),
			 VTP_ENOTFOUND);
	assert_int_equal(vtp_store_user_by_id(fx->s, "not-a-uuid", &got),
			 VTP_ENOTFOUND);
}

static void test_recording_active_room(void **state)
{
	fixture *fx = *state;
	char starter[VTP_UUID_BUFLEN], room[64], a[VTP_UUID_BUFLEN],
		b[VTP_UUID_BUFLEN], active[VTP_UUID_BUFLEN];
	int64_t count0 = 0, count1 = 0;
	vtp_recording r, got;

	make_user(fx, "instructor", starter);
	unique(room, sizeof(room), "room");
	assert_int_equal(vtp_store_recording_count_active(fx->s, &count0), 0);
	assert_int_equal(vtp_store_recording_active_in_room(fx->s, room,
							    active),
			 VTP_ENOTFOUND);
	make_rec(fx, room, starter, "pending", T0, a);
	assert_int_equal(vtp_store_recording_count_active(fx->s, &count1), 0);
	assert_int_equal(count1, count0 + 1);

	rec_init(&r, room, starter, "recording", T0 + 1);
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_active_in_room(fx->s, room,
							    active),
			 0);
	assert_string_equal(active, a);

	assert_int_equal(vtp_store_recording_stop(fx->s, a, T0 + 5000, 4.25),
			 0);
	assert_int_equal(vtp_store_recording_stop(fx->s, a, T0 + 6000, 5.0),
			 VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_active_in_room(fx->s, room,
							    active),
			 VTP_ENOTFOUND);
	assert_int_equal(vtp_store_recording_get(fx->s, a, &got), 0);
	assert_string_equal(got.status, "stopped");
	assert_int_equal(got.stopped_at, T0 + 5000);
	assert_true(got.duration_seconds == 4.25);
	vtp_recording_clear(&got);

	/* The room is free again. */
	make_rec(fx, room, starter, "recording", T0 + 10000, b);
	assert_int_equal(vtp_store_recording_active_in_room(fx->s, room,
							    active),
			 0);
	assert_string_equal(active, b);

	/* Unknown ids and a starter that is not a user. */
	vtp_uuid_v4(r.id);
	assert_int_equal(vtp_store_recording_stop(fx->s, r.id, T0, 1),
			 VTP_ENOTFOUND);
	assert_int_equal(vtp_store_recording_stop(fx->s, "garbage", T0, 1),
			 VTP_ENOTFOUND);
	rec_init(&r, "another-room-x", starter, "stopped", T0);
	vtp_uuid_v4(r.started_by);
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), VTP_EINVAL);
	rec_init(&r, room, starter, "bogus", T0);
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), VTP_EINVAL);
}

static void test_recording_get_fields(void **state)
{
	fixture *fx = *state;
	char starter[VTP_UUID_BUFLEN], room[64];
	vtp_recording r, got;

	make_user(fx, "instructor", starter);
	unique(room, sizeof(room), "room");
	rec_init(&r, room, starter, "done", T0);
	r.description = "Week 3: \"quotes\" and 'apostrophes' ?";
	r.file_path = "recordings/x/y/recording.mp4";
	r.file_size = INT64_C(5000000000);
	r.duration_seconds = 3723.125;
	r.format = "mp4";
	r.video_codec = "h264";
	r.audio_codec = "aac";
	r.resolution_width = 1920;
	r.resolution_height = 1080;
	r.fps = 25;
	r.bitrate = 4500;
	r.progress = 100;
	r.node_id = "node-a";
	r.metadata = "{\"layout\":\"grid\",\"n\":[1,2]}";
	r.stopped_at = T0 + 3723125;
	r.completed_at = T0 + 3800001;
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), 0);

	assert_int_equal(vtp_store_recording_get(fx->s, r.id, &got), 0);
	assert_string_equal(got.id, r.id);
	assert_string_equal(got.room_id, room);
	assert_string_equal(got.title, "Lecture");
	assert_string_equal(got.description, r.description);
	assert_string_equal(got.started_by, starter);
	assert_string_equal(got.status, "done");
	assert_string_equal(got.file_path, r.file_path);
	assert_int_equal(got.file_size, INT64_C(5000000000));
	assert_true(got.duration_seconds == 3723.125);
	assert_string_equal(got.format, "mp4");
	assert_string_equal(got.video_codec, "h264");
	assert_string_equal(got.audio_codec, "aac");
	assert_int_equal(got.resolution_width, 1920);
	assert_int_equal(got.resolution_height, 1080);
	assert_int_equal(got.fps, 25);
	assert_int_equal(got.bitrate, 4500);
	assert_int_equal(got.progress, 100);
	assert_null(got.error);
	assert_string_equal(got.node_id, "node-a");
	assert_json_equal(got.metadata, r.metadata);
	assert_int_equal(got.created_at, T0);
	assert_int_equal(got.stopped_at, T0 + 3723125);
	assert_int_equal(got.completed_at, T0 + 3800001);
	assert_int_equal(got.deleted_at, 0);
	assert_int_equal(got.participant_count, 0);
	vtp_recording_clear(&got);

	/* Unset values come back as unknown / "{}". */
	rec_init(&r, room, starter, "failed", T0);
	r.error = "encoder crashed";
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), 0);
	assert_int_equal(vtp_store_recording_get(fx->s, r.id, &got), 0);
	assert_int_equal(got.file_size, -1);
	assert_true(got.duration_seconds < 0);
	assert_null(got.description);
	assert_null(got.node_id);
	assert_string_equal(got.error, "encoder crashed");
	assert_json_equal(got.metadata, "{}");
	assert_int_equal(got.stopped_at, 0);
	vtp_recording_clear(&got);

	vtp_uuid_v4(r.id);
	assert_int_equal(vtp_store_recording_get(fx->s, r.id, &got),
			 VTP_ENOTFOUND);
	/* Bad JSON metadata is rejected on both backends. */
	rec_init(&r, room, starter, "done", T0);
	r.metadata = "{not json";
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), VTP_EINVAL);
}

static void test_soft_delete_restore(void **state)
{
	fixture *fx = *state;
	char starter[VTP_UUID_BUFLEN], room[64], id[VTP_UUID_BUFLEN],
		missing[VTP_UUID_BUFLEN];
	vtp_recording got;

	make_user(fx, "instructor", starter);
	unique(room, sizeof(room), "room");
	make_rec(fx, room, starter, "recording", T0, id);

	assert_int_equal(vtp_store_recording_restore(fx->s, id), VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_soft_delete(fx->s, id, T0 + 42), 0);
	assert_int_equal(vtp_store_recording_soft_delete(fx->s, id, T0 + 43),
			 VTP_ECONFLICT);
	/* Still readable, with deleted_at. */
	assert_int_equal(vtp_store_recording_get(fx->s, id, &got), 0);
	assert_int_equal(got.deleted_at, T0 + 42);
	vtp_recording_clear(&got);
	/* A deleted recording cannot be stopped. */
	assert_int_equal(vtp_store_recording_stop(fx->s, id, T0 + 50, 1.0),
			 VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_restore(fx->s, id), 0);
	assert_int_equal(vtp_store_recording_restore(fx->s, id), VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_get(fx->s, id, &got), 0);
	assert_int_equal(got.deleted_at, 0);
	vtp_recording_clear(&got);
	assert_int_equal(vtp_store_recording_stop(fx->s, id, T0 + 60, 1.0), 0);

	vtp_uuid_v4(missing);
	assert_int_equal(vtp_store_recording_soft_delete(fx->s, missing, T0),
			 VTP_ENOTFOUND);
	assert_int_equal(vtp_store_recording_restore(fx->s, missing),
			 VTP_ENOTFOUND);
}

static void test_list(void **state)
{
	fixture *fx = *state;
	char starter[VTP_UUID_BUFLEN], admin[VTP_UUID_BUFLEN],
		friend[VTP_UUID_BUFLEN], student[VTP_UUID_BUFLEN],
		stranger[VTP_UUID_BUFLEN], room[64], id[6][VTP_UUID_BUFLEN];
	vtp_recording_filter f;
	vtp_recording *arr = NULL;
	vtp_share sh, out;
	int64_t total = 0;
	bool created;
	size_t n = 0;

	make_user(fx, "instructor", starter);
	make_user(fx, "admin", admin);
	make_user(fx, "student", friend);
	make_user(fx, "student", student);
	make_user(fx, "instructor", stranger);
	unique(room, sizeof(room), "room");
	make_rec(fx, room, starter, "stopped", T0 + 1000, id[0]);
	make_rec(fx, room, starter, "done", T0 + 2000, id[1]);
	make_rec(fx, room, starter, "stopped", T0 + 3000, id[2]);
	make_rec(fx, room, starter, "stopped", T0 + 4000, id[3]);
	make_rec(fx, room, starter, "recording", T0 + 4000, id[4]);

	/* Admin, room filter: all five, newest first, ties by id DESC. */
	memset(&f, 0, sizeof(f));
	f.room_id = room;
	f.viewer_id = admin;
	f.viewer_role = "admin";
	f.viewer_is_admin = true;
	f.limit = 100;
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 0);
	assert_int_equal(n, 5);
	assert_int_equal(total, 5);
	{
		const char *hi = strcmp(id[3], id[4]) > 0 ? id[3] : id[4];
		const char *lo = hi == id[3] ? id[4] : id[3];

		assert_string_equal(arr[0].id, hi);
		assert_string_equal(arr[1].id, lo);
	}
	assert_string_equal(arr[2].id, id[2]);
	assert_string_equal(arr[3].id, id[1]);
	assert_string_equal(arr[4].id, id[0]);
	vtp_recording_free_array(arr, n);

	/* limit/offset keep the total. */
	f.limit = 2;
	f.offset = 2;
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(total, 5);
	assert_string_equal(arr[0].id, id[2]);
	assert_string_equal(arr[1].id, id[1]);
	vtp_recording_free_array(arr, n);
	f.offset = 10;
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 0);
	assert_int_equal(n, 0);
	assert_null(arr);
	assert_int_equal(total, 5);
	f.offset = 0;
	f.limit = 0;
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 VTP_EINVAL);
	f.limit = 101;
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 VTP_EINVAL);
	f.limit = 10;
	f.offset = -1;
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 VTP_EINVAL);
	f.offset = 0;

	/* Status filter. */
	f.status = "done";
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].id, id[1]);
	vtp_recording_free_array(arr, n);
	f.status = NULL;

	/* The starter sees all of them, even without a room filter. */
	f.viewer_is_admin = false;
	f.viewer_id = starter;
	f.viewer_role = "instructor";
	assert_int_equal(list_total(fx, &f), 5);
	f.room_id = NULL;
	assert_int_equal(list_total(fx, &f), 5);
	f.room_id = room;

	/* A stranger sees nothing; so does a viewer without an id. */
	f.viewer_id = stranger;
	assert_int_equal(list_total(fx, &f), 0);
	f.viewer_id = NULL;
	f.viewer_role = NULL;
	assert_int_equal(list_total(fx, &f), 0);

	/* A share to the friend's id, one to the student role. */
	memset(&sh, 0, sizeof(sh));
	memcpy(sh.recording_id, id[0], VTP_UUID_BUFLEN);
	sh.user_id = friend;
	sh.permission = "view";
	sh.shared_by = starter;
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created), 0);
	vtp_share_clear(&out);
	memcpy(sh.recording_id, id[1], VTP_UUID_BUFLEN);
	sh.user_id = NULL;
	sh.role = "student";
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created), 0);
	vtp_share_clear(&out);

	f.viewer_id = friend;
	f.viewer_role = "instructor";
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].id, id[0]);
	vtp_recording_free_array(arr, n);
	f.viewer_role = "student";
	assert_int_equal(list_total(fx, &f), 2);
	f.viewer_id = student;
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].id, id[1]);
	vtp_recording_free_array(arr, n);

	/* Soft-deleted: gone from live lists; listed only to starter/admin,
	 * shares do not count. */
	assert_int_equal(vtp_store_recording_soft_delete(fx->s, id[0], T0 + 9),
			 0);
	f.viewer_id = friend;
	assert_int_equal(list_total(fx, &f), 1);
	f.deleted = true;
	assert_int_equal(list_total(fx, &f), 0);
	f.viewer_id = starter;
	f.viewer_role = "instructor";
	assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].id, id[0]);
	assert_int_equal(arr[0].deleted_at, T0 + 9);
	vtp_recording_free_array(arr, n);
	f.viewer_id = admin;
	f.viewer_is_admin = true;
	assert_int_equal(list_total(fx, &f), 1);
	f.deleted = false;
	assert_int_equal(list_total(fx, &f), 4);
}

/* A viewer's list merges what they started with what is shared with them
 * (by user or by role), newest first, across page boundaries; a recording
 * both owned and shared appears once; totals match at every offset. */
static void test_list_owned_and_shared_pages(void **state)
{
	fixture *fx = *state;
	char me[VTP_UUID_BUFLEN], other[VTP_UUID_BUFLEN], room[64];
	char id[8][VTP_UUID_BUFLEN];
	/* expected order, newest first: created at T0 + 8000 ... T0 + 1000 */
	int expect_order[] = {7, 6, 5, 4, 3, 2, 1, 0};
	vtp_recording_filter f;
	vtp_share sh, out;
	bool created;

	make_user(fx, "student", me);
	make_user(fx, "instructor", other);
	unique(room, sizeof(room), "merge");
	/* even i: started by me; odd i: by the other user, shared with me */
	for (int i = 0; i < 8; i++)
		make_rec(fx, room, i % 2 ? other : me, "stopped", T0 + 1000 * (i + 1), id[i]);
	for (int i = 1; i < 8; i += 2) {
		memset(&sh, 0, sizeof(sh));
		memcpy(sh.recording_id, id[i], VTP_UUID_BUFLEN);
		if (i == 3)
			sh.role = "student"; /* through my role */
		else
			sh.user_id = me;
		sh.permission = "view";
		sh.shared_by = other;
		assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created), 0);
		vtp_share_clear(&out);
	}
	/* one of mine is also shared with my role: still listed once */
	memset(&sh, 0, sizeof(sh));
	memcpy(sh.recording_id, id[4], VTP_UUID_BUFLEN);
	sh.role = "student";
	sh.permission = "view";
	sh.shared_by = me;
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created), 0);
	vtp_share_clear(&out);
	/* someone else's, not shared: never listed */
	{
		char hidden[VTP_UUID_BUFLEN];

		make_rec(fx, room, other, "stopped", T0 + 9000, hidden);
	}

	memset(&f, 0, sizeof(f));
	f.room_id = room;
	f.viewer_id = me;
	f.viewer_role = "student";
	for (int limit = 1; limit <= 9; limit++) {
		int seen = 0;

		for (int offset = 0; offset <= 9; offset += limit) {
			vtp_recording *arr = NULL;
			size_t n = 0;
			int64_t total = -1;

			f.limit = limit;
			f.offset = offset;
			assert_int_equal(vtp_store_recording_list(fx->s, &f, &arr, &n, &total), 0);
			assert_int_equal(total, 8);
			for (size_t k = 0; k < n; k++) {
				assert_true(seen < 8);
				assert_string_equal(arr[k].id, id[expect_order[seen]]);
				seen++;
			}
			vtp_recording_free_array(arr, n);
		}
		assert_int_equal(seen, 8);
	}
}

static void test_room_ids(void **state)
{
	fixture *fx = *state;
	char starter[VTP_UUID_BUFLEN], id[VTP_UUID_BUFLEN],
		active[VTP_UUID_BUFLEN];
	char room[2 * 256 + 32];
	const char *rooms[3];
	vtp_recording r, got;

	make_user(fx, "instructor", starter);
	/* 255 two-byte characters: fits VARCHAR(255) / the length check. */
	room[0] = '\0';
	for (int i = 0; i < 255; i++)
		strncat(room, "é", sizeof(room) - strlen(room) - 1);
	assert_int_equal(strlen(room), 510);
	rooms[0] = room;
	rooms[1] = "../../x";
	rooms[2] = "room with 'quote' and ? and \"dq\"";
	for (int i = 0; i < 3; i++) {
		/* fixed names: free the room should an earlier run hold it */
		if (vtp_store_recording_active_in_room(fx->s, rooms[i],
						       active) == 0)
			assert_int_equal(vtp_store_recording_stop(fx->s, active,
								  T0, 1),
					 0);
		make_rec(fx, rooms[i], starter, "recording", T0, id);
		assert_int_equal(vtp_store_recording_active_in_room(
					 fx->s, rooms[i], active),
				 0);
		assert_string_equal(active, id);
		assert_int_equal(vtp_store_recording_get(fx->s, id, &got), 0);
		assert_string_equal(got.room_id, rooms[i]);
		vtp_recording_clear(&got);
	}

	/* 256 characters: rejected on both backends. */
	room[0] = '\0';
	for (int i = 0; i < 256; i++)
		strncat(room, "é", sizeof(room) - strlen(room) - 1);
	rec_init(&r, room, starter, "stopped", T0);
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), VTP_EINVAL);
	rec_init(&r, "", starter, "stopped", T0);
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), VTP_EINVAL);
}

static void test_shares(void **state)
{
	fixture *fx = *state;
	char starter[VTP_UUID_BUFLEN], friend[VTP_UUID_BUFLEN],
		other[VTP_UUID_BUFLEN], room[64], rec[VTP_UUID_BUFLEN],
		rec2[VTP_UUID_BUFLEN], user_share[VTP_UUID_BUFLEN];
	vtp_share sh, out, *arr = NULL;
	bool created = false;
	size_t n = 0;
	int level = -1;

	make_user(fx, "instructor", starter);
	make_user(fx, "student", friend);
	make_user(fx, "student", other);
	unique(room, sizeof(room), "room");
	make_rec(fx, room, starter, "stopped", T0, rec);
	make_rec(fx, room, starter, "stopped", T0 + 1, rec2);

	memset(&sh, 0, sizeof(sh));
	memcpy(sh.recording_id, rec, VTP_UUID_BUFLEN);
	sh.user_id = friend;
	sh.permission = "view";
	sh.shared_by = starter;
	sh.shared_at = T0 + 10;
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created), 0);
	assert_true(created);
	assert_string_equal(out.recording_id, rec);
	assert_string_equal(out.user_id, friend);
	assert_null(out.role);
	assert_string_equal(out.permission, "view");
	assert_string_equal(out.shared_by, starter);
	assert_int_equal(out.shared_at, T0 + 10);
	memcpy(user_share, out.id, VTP_UUID_BUFLEN);
	vtp_share_clear(&out);

	/* Same user again: replaced, same id. */
	sh.permission = "download";
	sh.shared_at = T0 + 20;
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created), 0);
	assert_false(created);
	assert_string_equal(out.id, user_share);
	assert_string_equal(out.permission, "download");
	assert_int_equal(out.shared_at, T0 + 20);
	vtp_share_clear(&out);

	/* A role share. */
	sh.user_id = NULL;
	sh.role = "student";
	sh.permission = "view";
	sh.shared_at = T0 + 30;
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created), 0);
	assert_true(created);
	assert_null(out.user_id);
	assert_string_equal(out.role, "student");
	vtp_share_clear(&out);

	assert_int_equal(vtp_store_share_list(fx->s, rec, &arr, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(arr[0].id, user_share);
	assert_string_equal(arr[0].permission, "download");
	assert_string_equal(arr[1].role, "student");
	vtp_share_free_array(arr, n);
	assert_int_equal(vtp_store_share_list(fx->s, rec2, &arr, &n), 0);
	assert_int_equal(n, 0);
	assert_null(arr);

	/* Levels: max over the user's and the role's shares. */
	assert_int_equal(vtp_store_share_level(fx->s, rec, friend, "student",
					       &level),
			 0);
	assert_int_equal(level, 2);
	assert_int_equal(vtp_store_share_level(fx->s, rec, other, "student",
					       &level),
			 0);
	assert_int_equal(level, 1);
	assert_int_equal(vtp_store_share_level(fx->s, rec, other, "instructor",
					       &level),
			 0);
	assert_int_equal(level, 0);
	assert_int_equal(vtp_store_share_level(fx->s, rec2, friend, "student",
					       &level),
			 0);
	assert_int_equal(level, 0);
	sh.permission = "share";
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created), 0);
	assert_false(created);
	vtp_share_clear(&out);
	assert_int_equal(vtp_store_share_level(fx->s, rec, friend, "student",
					       &level),
			 0);
	assert_int_equal(level, 3);

	/* Invalid shares. */
	sh.user_id = friend; /* and role: both set */
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created),
			 VTP_EINVAL);
	sh.user_id = NULL;
	sh.role = NULL;
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created),
			 VTP_EINVAL);
	sh.role = "student";
	sh.permission = "own";
	assert_int_equal(vtp_store_share_put(fx->s, &sh, true, &out, &created),
			 VTP_EINVAL);

	/* Delete: only under its own recording. */
	assert_int_equal(vtp_store_share_delete(fx->s, rec2, user_share),
			 VTP_ENOTFOUND);
	assert_int_equal(vtp_store_share_delete(fx->s, rec, user_share), 0);
	assert_int_equal(vtp_store_share_delete(fx->s, rec, user_share),
			 VTP_ENOTFOUND);
	assert_int_equal(vtp_store_share_level(fx->s, rec, friend, NULL,
					       &level),
			 0);
	assert_int_equal(level, 0);
}

/* The generation moves after every data change but the access log's;
 * PostgreSQL (shared between nodes) promises one only while it follows
 * the other nodes' writes (test_watch). */
static void test_generation(void **state)
{
	fixture *fx = *state;
	char user[VTP_UUID_BUFLEN], room[64], id[VTP_UUID_BUFLEN];
	vtp_access_entry e[2];
	uint64_t g;

	if (strcmp(fx->backend, "postgres") == 0) {
		assert_int_equal(vtp_store_generation(fx->s), 0);
		return;
	}
	g = vtp_store_generation(fx->s);
	assert_true(g != 0);
	make_user(fx, "instructor", user);
	assert_true(vtp_store_generation(fx->s) != g);
	g = vtp_store_generation(fx->s);
	unique(room, sizeof(room), "room");
	make_rec(fx, room, user, "recording", T0, id);
	assert_true(vtp_store_generation(fx->s) != g);
	g = vtp_store_generation(fx->s);
	assert_int_equal(vtp_store_recording_stop(fx->s, id, T0 + 5, 1.0), 0);
	assert_true(vtp_store_generation(fx->s) != g);
	g = vtp_store_generation(fx->s);
	/* reads and the access log leave it alone */
	assert_true(list_total(fx, &(vtp_recording_filter){.viewer_is_admin = true, .limit = 10}) >= 1);
	memset(e, 0, sizeof(e));
	for (int i = 0; i < 2; i++) {
		memcpy(e[i].recording_id, id, VTP_UUID_BUFLEN);
		e[i].accessed_by = user;
		e[i].access_type = "view";
		e[i].accessed_at = T0 + i;
	}
	assert_int_equal(vtp_store_access_log_insert(fx->s, &e[0]), 0);
	assert_int_equal(vtp_store_access_log_insert_many(fx->s, e, 2), 0);
	assert_true(vtp_store_generation(fx->s) == g);
	assert_int_equal(vtp_store_recording_soft_delete(fx->s, id, T0 + 9), 0);
	assert_true(vtp_store_generation(fx->s) != g);
}

/* Waits up to 20 s for the generation to be (up) or not be (!up) promised;
 * the watcher connects and notices losses on its own thread. */
static uint64_t wait_generation(vtp_store *s, bool up)
{
	for (int i = 0; i < 2000 && (vtp_store_generation(s) != 0) != up; i++)
		usleep(10000);
	assert_true((vtp_store_generation(s) != 0) == up);
	return vtp_store_generation(s);
}

static uint64_t wait_moved(vtp_store *s, uint64_t g)
{
	for (int i = 0; i < 2000 && vtp_store_generation(s) == g; i++)
		usleep(10000);
	assert_true(vtp_store_generation(s) != g);
	return vtp_store_generation(s);
}

/* Runs one statement on its own connection (another node, an operator). */
static void pg_run_on(const char *url, const char *sql)
{
	PGconn *pg = PQconnectdb(url);
	PGresult *res;

	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	res = PQexec(pg, sql);
	assert_true(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
	PQclear(res);
	PQfinish(pg);
}

static void pg_run(fixture *fx, const char *sql)
{
	pg_run_on(fx->url, sql);
}

/* PostgreSQL with the watcher: the generation is promised once its LISTEN
 * connection is up, moves when another node (another store on the same
 * database) writes a recording, a share, a participant or a user, and is 0
 * while the connection is gone (kept answers off, however long); when it
 * is back the number differs from any before (everything kept was
 * dropped). SQLite: a no-op. */
static void test_watch(void **state)
{
	fixture *fx = *state;
	char user[VTP_UUID_BUFLEN], room[64], id[VTP_UUID_BUFLEN], err[256], sql[256];
	vtp_participant p;
	vtp_share sh, got;
	vtp_store *other = NULL;
	bool created;
	uint64_t g, before;

	if (strcmp(fx->backend, "postgres") != 0) {
		assert_int_equal(vtp_store_watch(fx->s), 0);
		assert_true(vtp_store_watch_up(fx->s));
		return;
	}
	assert_int_equal(vtp_store_open(fx->url, 1, &other, err, sizeof(err)), 0);
	assert_int_equal(vtp_store_generation(fx->s), 0);
	assert_int_equal(vtp_store_watch(fx->s), 0);
	g = wait_generation(fx->s, true);
	assert_true(vtp_store_watch_up(fx->s));
	/* writes by the other node move this one's number */
	make_user(fx, "instructor", user); /* through fx->s: moves at once */
	g = wait_moved(fx->s, g);
	vtp_uuid_v4(id);
	unique(room, sizeof(room), "room");
	{
		vtp_recording r;

		rec_init(&r, room, user, "recording", T0);
		memcpy(r.id, id, sizeof(r.id));
		assert_int_equal(vtp_store_recording_insert(other, &r), 0);
	}
	g = wait_moved(fx->s, g);
	assert_int_equal(vtp_store_recording_stop(other, id, T0 + 5, 1.0), 0);
	g = wait_moved(fx->s, g);
	assert_int_equal(vtp_store_recording_processing(other, id), 0);
	g = wait_moved(fx->s, g);
	memset(&sh, 0, sizeof(sh));
	vtp_uuid_v4(sh.id);
	memcpy(sh.recording_id, id, sizeof(sh.recording_id));
	sh.role = "student";
	sh.permission = "view";
	sh.shared_by = user;
	sh.shared_at = T0 + 6;
	assert_int_equal(vtp_store_share_put(other, &sh, false, &got, &created), 0);
	vtp_share_clear(&got);
	g = wait_moved(fx->s, g);
	memset(&p, 0, sizeof(p));
	vtp_uuid_v4(p.id);
	memcpy(p.recording_id, id, sizeof(p.recording_id));
	p.peer_id = "peer-1";
	p.full_name = "Peer";
	p.joined_at = T0 + 1;
	assert_int_equal(vtp_store_participant_insert(other, &p), 0);
	g = wait_moved(fx->s, g);
	/* this store's own write moves the number once, at its commit: its
	 * notification (sent before the next one, from another session) is
	 * not counted again, which would drop what was kept since */
	make_user(fx, "student", user);
	g = vtp_store_generation(fx->s);
	assert_int_equal(vtp_store_participant_left_all(other, id, T0 + 9), 0);
	assert_int_equal(wait_moved(fx->s, g), g + 1);
	g = vtp_store_generation(fx->s);
	/* the feed's connection ends and cannot come back (the database
	 * takes no new connections; the pool's stay): nothing is promised
	 * for as long, and when it is back the number is one never seen */
	before = g;
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS false", fx->dbname);
	pg_run_on(fx->admin_url, sql);
	snprintf(sql, sizeof(sql),
		 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		 " WHERE application_name = 'vtp-recorder-listen' AND datname = '%s'", fx->dbname);
	pg_run_on(fx->admin_url, sql);
	wait_generation(fx->s, false);
	assert_false(vtp_store_watch_up(fx->s));
	usleep(500000); /* reconnects are tried and fail meanwhile */
	assert_int_equal(vtp_store_generation(fx->s), 0);
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", fx->dbname);
	pg_run_on(fx->admin_url, sql);
	g = wait_generation(fx->s, true);
	assert_true(g > before);
	vtp_store_free(other);
}

/* The journal and presence rows are stamped by the database's clock on
 * PostgreSQL: this process's clock, moved two hours back, does not show. */
static int64_t two_hours_ago(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - 2 * 3600 * 1000;
}

typedef struct stamp_ctx {
	const char *room;
	int64_t at;
} stamp_ctx;

static int find_stamp(void *ctx, const vtp_room_event *e)
{
	stamp_ctx *sc = ctx;

	if (strcmp(e->room_id, sc->room) == 0)
		sc->at = e->created_at;
	return 0;
}

static void test_db_clock(void **state)
{
	fixture *fx = *state;
	char room[64];
	stamp_ctx sc = {room, 0};
	int64_t db_now = 0, real;

	unique(room, sizeof(room), "clock");
	vtp_clock_set(two_hours_ago);
	assert_int_equal(vtp_store_clock(fx->s, &db_now), 0);
	assert_int_equal(vtp_store_room_event_add(fx->s, room, "recording-started", "{}"), 0);
	assert_int_equal(vtp_store_room_events_since(fx->s, db_now - 60000, find_stamp, &sc), 0);
	vtp_clock_set(NULL);
	real = vtp_now_ms();
	if (strcmp(fx->backend, "postgres") == 0) {
		/* the database's clock: now, whatever this process says */
		assert_true(llabs(db_now - real) < 600000);
		assert_true(llabs(sc.at - real) < 600000);
	} else {
		/* one machine: the process stamps (its clock, injected here) */
		assert_true(llabs(db_now - (real - 7200000)) < 600000);
		assert_true(llabs(sc.at - (real - 7200000)) < 600000);
	}
}

typedef struct members_ctx {
	int n;
	char ids[4][VTP_UUID_BUFLEN];
} members_ctx;

static int collect_member(void *ctx, const char *user_id, const char *full_name, const char *role)
{
	members_ctx *mc = ctx;

	(void)full_name;
	(void)role;
	if (mc->n < 4)
		snprintf(mc->ids[mc->n++], VTP_UUID_BUFLEN, "%s", user_id);
	return 0;
}

typedef struct expired_seen {
	int n;
	char room[64];
} expired_seen;

/* rows of other tests' rooms may expire too: only this test's room counts */
static int count_expired(void *ctx, const char *room_id)
{
	expired_seen *es = ctx;

	if (strncmp(room_id, "presence-", 9) == 0) {
		es->n++;
		snprintf(es->room, sizeof(es->room), "%s", room_id);
	}
	return 0;
}

/* Room presence: rows of two nodes count different users once; a node's
 * heartbeat keeps its rows while a silent node's expire. */
static void test_presence(void **state)
{
	fixture *fx = *state;
	char room[64], u1[VTP_UUID_BUFLEN], u2[VTP_UUID_BUFLEN], sql[256];
	members_ctx mc;
	expired_seen ec = {0, ""};
	int64_t count, kept;

	unique(room, sizeof(room), "presence");
	vtp_uuid_v4(u1);
	vtp_uuid_v4(u2);
	assert_int_equal(vtp_store_presence_put(fx->s, "node-a", "sid1", room, u1, "One", "student"), 0);
	assert_int_equal(vtp_store_presence_put(fx->s, "node-a", "sid2", room, u1, "One", "student"), 0);
	assert_int_equal(vtp_store_presence_put(fx->s, "node-b", "sid1", room, u2, "Two", "instructor"), 0);
	/* a put again only refreshes */
	assert_int_equal(vtp_store_presence_put(fx->s, "node-b", "sid1", room, u2, "Two", "instructor"), 0);
	memset(&mc, 0, sizeof(mc));
	assert_int_equal(vtp_store_presence_members(fx->s, room, 50, &count, collect_member, &mc), 0);
	assert_int_equal(count, 2);
	assert_int_equal(mc.n, 2);
	/* each user once, whichever came first within the clock's resolution */
	assert_true((strcmp(mc.ids[0], u1) == 0 && strcmp(mc.ids[1], u2) == 0) ||
		    (strcmp(mc.ids[0], u2) == 0 && strcmp(mc.ids[1], u1) == 0));
	memset(&mc, 0, sizeof(mc));
	assert_int_equal(vtp_store_presence_members(fx->s, room, 1, &count, collect_member, &mc), 0);
	assert_int_equal(count, 2);
	assert_int_equal(mc.n, 1);
	/* node-b goes silent: its rows are made a minute old; node-a beats */
	if (strcmp(fx->backend, "postgres") == 0) {
		snprintf(sql, sizeof(sql),
			 "UPDATE room_presence SET seen_at = now() - interval '60 seconds'"
			 " WHERE node_id = 'node-b' AND room_id = '%s'", room);
		pg_run(fx, sql);
	} else {
		vtp_clock_set(two_hours_ago);
		assert_int_equal(vtp_store_presence_put(fx->s, "node-b", "sid1", room, u2, "Two",
							"instructor"),
				 0);
		vtp_clock_set(NULL);
	}
	assert_int_equal(vtp_store_presence_heartbeat(fx->s, "node-a", 30000, &kept, count_expired,
							 &ec),
			 0);
	assert_true(kept >= 2);
	assert_int_equal(ec.n, 1);
	assert_string_equal(ec.room, room);
	memset(&mc, 0, sizeof(mc));
	assert_int_equal(vtp_store_presence_members(fx->s, room, 50, &count, collect_member, &mc), 0);
	assert_int_equal(count, 1);
	/* one socket leaves, then the node's rows all go */
	assert_int_equal(vtp_store_presence_drop(fx->s, "node-a", "sid1", room), 0);
	assert_int_equal(vtp_store_presence_members(fx->s, room, 50, &count, collect_member, &mc), 0);
	assert_int_equal(count, 1);
	assert_int_equal(vtp_store_presence_drop(fx->s, "node-a", NULL, NULL), 0);
	assert_int_equal(vtp_store_presence_members(fx->s, room, 50, &count, collect_member, &mc), 0);
	assert_int_equal(count, 0);
}

/* On SQLite the generation is shared by every process using the file (a
 * counter mapped from DB-generation): a write through another handle, as a
 * compose child or a `worker` makes, moves this handle's number too; access
 * log and queue writes move neither. */
static void test_generation_shared(void **state)
{
	fixture *fx = *state;
	char user[VTP_UUID_BUFLEN], room[64], id[VTP_UUID_BUFLEN], path[400], err[256];
	vtp_access_entry e;
	vtp_store *other = NULL;
	struct stat st;
	uint64_t g;

	if (strcmp(fx->backend, "sqlite") != 0)
		return;
	snprintf(path, sizeof(path), "%s/sub/vtp.db-generation", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(vtp_store_open(fx->url, 1, &other, err, sizeof(err)), 0);
	make_user(fx, "instructor", user);
	unique(room, sizeof(room), "room");
	make_rec(fx, room, user, "recording", T0, id);
	g = vtp_store_generation(fx->s);
	assert_true(vtp_store_generation(other) == g);
	assert_int_equal(vtp_store_recording_stop(other, id, T0 + 5, 1.0), 0);
	assert_true(vtp_store_generation(fx->s) != g);
	assert_true(vtp_store_generation(fx->s) == vtp_store_generation(other));
	g = vtp_store_generation(fx->s);
	memset(&e, 0, sizeof(e));
	memcpy(e.recording_id, id, VTP_UUID_BUFLEN);
	e.access_type = "processing";
	e.accessed_at = T0 + 6;
	assert_int_equal(vtp_store_access_log_insert(other, &e), 0);
	assert_int_equal(vtp_store_job_enqueue(other, id, T0, NULL), 0);
	assert_true(vtp_store_generation(fx->s) == g);
	assert_int_equal(vtp_store_recording_processing(other, id), 0);
	assert_true(vtp_store_generation(fx->s) != g);
	vtp_store_free(other);
}

static bool in_list(const vtp_recording *arr, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(arr[i].id, id) == 0)
			return true;
	return false;
}

/* Recordings waiting for processing without an open job: stopped or
 * processing, and no queued/running job (a finished one does not count). */
static void test_unqueued(void **state)
{
	fixture *fx = *state;
	char user[VTP_UUID_BUFLEN], room[64], ids[6][VTP_UUID_BUFLEN];
	const char *statuses[] = {"stopped", "stopped", "stopped", "recording", "stopped", "stopped"};
	vtp_recording *arr = NULL;
	vtp_job job;
	size_t n = 0;

	make_user(fx, "instructor", user);
	for (int i = 0; i < 6; i++) {
		unique(room, sizeof(room), "unq");
		make_rec(fx, room, user, statuses[i], T0 + i, ids[i]);
	}
	/* 0: no job; 1: queued; 2: running; 3: active; 4: job failed, still
	 * stopped; 5: processing whose job was lost */
	assert_int_equal(vtp_store_job_enqueue(fx->s, ids[1], T0 + 999999999, NULL), 0);
	assert_int_equal(vtp_store_job_enqueue(fx->s, ids[2], T0, &job), 0);
	assert_int_equal(vtp_store_job_claim(fx->s, "unq-node", T0 + 1, &job), 0);
	if (strcmp(job.recording_id, ids[2]) != 0) {
		/* an older runnable job of another case came first: finish and retry */
		while (strcmp(job.recording_id, ids[2]) != 0) {
			assert_int_equal(vtp_store_job_finish(fx->s, job.id, true, NULL), 0);
			assert_int_equal(vtp_store_job_claim(fx->s, "unq-node", T0 + 1, &job), 0);
		}
	}
	assert_int_equal(vtp_store_job_enqueue(fx->s, ids[4], T0, &job), 0);
	assert_int_equal(vtp_store_job_claim(fx->s, "unq-node", T0 + 2, &job), 0);
	assert_string_equal(job.recording_id, ids[4]);
	assert_int_equal(vtp_store_job_finish(fx->s, job.id, false, "crashed"), 0);
	assert_int_equal(vtp_store_recording_processing(fx->s, ids[5]), 0);

	assert_int_equal(vtp_store_recording_unqueued(fx->s, &arr, &n), 0);
	assert_true(in_list(arr, n, ids[0]));
	assert_false(in_list(arr, n, ids[1]));
	assert_false(in_list(arr, n, ids[2]));
	assert_false(in_list(arr, n, ids[3]));
	assert_true(in_list(arr, n, ids[4]));
	assert_true(in_list(arr, n, ids[5]));
	for (size_t i = 0; i < n; i++)
		assert_true(strcmp(arr[i].status, "stopped") == 0 ||
			    strcmp(arr[i].status, "processing") == 0);
	vtp_recording_free_array(arr, n);
	/* the running job is this case's: finish it so later cases see an empty queue */
	assert_int_equal(vtp_store_job_requeue_node(fx->s, "unq-node", T0, NULL), 0);
	while (vtp_store_job_claim(fx->s, "unq-drain", T0 + 1000000000, &job) == 0)
		assert_int_equal(vtp_store_job_finish(fx->s, job.id, true, NULL), 0);
}

static void test_access_log(void **state)
{
	fixture *fx = *state;
	char user[VTP_UUID_BUFLEN], rec[VTP_UUID_BUFLEN], ghost[VTP_UUID_BUFLEN];
	vtp_access_entry e, *arr = NULL;
	int64_t total = 0;
	size_t n = 0;

	make_user(fx, "instructor", user);
	vtp_uuid_v4(rec); /* no recording row needed: entries outlive purges */
	for (int i = 0; i < 5; i++) {
		memset(&e, 0, sizeof(e));
		memcpy(e.recording_id, rec, VTP_UUID_BUFLEN);
		e.accessed_by = i == 4 ? NULL : user;
		e.access_type = i == 4 ? "purge" : "view";
		e.ip_address = "2001:db8::1";
		e.user_agent = "Mozilla/5.0";
		e.detail = i == 0 ? "{\"range\":\"bytes=0-\"}" : NULL;
		e.accessed_at = T0 + i;
		assert_int_equal(vtp_store_access_log_insert(fx->s, &e), 0);
	}
	e.detail = "not json";
	assert_int_equal(vtp_store_access_log_insert(fx->s, &e), VTP_EINVAL);

	assert_int_equal(vtp_store_access_log_list(fx->s, rec, 3, 0, &arr, &n,
						   &total),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(total, 5);
	assert_int_equal(arr[0].accessed_at, T0 + 4);
	assert_null(arr[0].accessed_by);
	assert_string_equal(arr[0].access_type, "purge");
	assert_int_equal(arr[1].accessed_at, T0 + 3);
	assert_string_equal(arr[1].accessed_by, user);
	assert_string_equal(arr[1].ip_address, "2001:db8::1");
	assert_string_equal(arr[1].user_agent, "Mozilla/5.0");
	assert_string_equal(arr[1].recording_id, rec);
	assert_int_equal(arr[2].accessed_at, T0 + 2);
	vtp_access_entry_free_array(arr, n);

	assert_int_equal(vtp_store_access_log_list(fx->s, rec, 3, 3, &arr, &n,
						   &total),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(total, 5);
	assert_int_equal(arr[1].accessed_at, T0);
	assert_json_equal(arr[1].detail, "{\"range\":\"bytes=0-\"}");
	vtp_access_entry_free_array(arr, n);

	vtp_uuid_v4(ghost);
	assert_int_equal(vtp_store_access_log_list(fx->s, ghost, 10, 0, &arr,
						   &n, &total),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, 0);
	assert_int_equal(vtp_store_access_log_list(fx->s, rec, 0, 0, &arr, &n,
						   &total),
			 VTP_EINVAL);
}

/* insert_many: n entries in one transaction. BATCH_MAX entries at most per
 * call here; each case gets its own recording id. */
#define BATCH_MAX 300

typedef struct batch {
	vtp_access_entry e[BATCH_MAX];
	char agents[BATCH_MAX][32];
	char rec[VTP_UUID_BUFLEN];
} batch;

static void batch_init(batch *b, const char *user, size_t n)
{
	memset(b, 0, sizeof(*b));
	vtp_uuid_v4(b->rec);
	for (size_t i = 0; i < n; i++) {
		vtp_access_entry *e = &b->e[i];

		/* caller-chosen ids on even entries, store-made on odd ones */
		if (i % 2 == 0)
			vtp_uuid_v7(e->id);
		memcpy(e->recording_id, b->rec, VTP_UUID_BUFLEN);
		e->accessed_by = i % 5 == 4 ? NULL : (char *)user;
		e->access_type = "view";
		e->ip_address = i % 3 ? "198.51.100.20" : NULL;
		snprintf(b->agents[i], sizeof(b->agents[i]), "agent-%zu", i);
		e->user_agent = b->agents[i];
		e->detail = i % 7 == 0 ? "{\"n\":1}" : NULL;
		e->accessed_at = T0 + (int64_t)i;
	}
}

static int64_t access_total(fixture *fx, const char *rec)
{
	vtp_access_entry *arr = NULL;
	size_t n = 0;
	int64_t total = -1;

	assert_int_equal(vtp_store_access_log_list(fx->s, rec, 1, 0, &arr, &n,
						   &total),
			 0);
	vtp_access_entry_free_array(arr, n);
	return total;
}

static void test_access_log_insert_many(void **state)
{
	fixture *fx = *state;
	static const size_t sizes[] = {0, 1, 2, BATCH_MAX};
	char user[VTP_UUID_BUFLEN];
	batch *b = vtp_malloc(sizeof(*b));

	make_user(fx, "student", user);
	/* nothing to insert: nothing happens, even with no array */
	assert_int_equal(vtp_store_access_log_insert_many(fx->s, NULL, 0), 0);

	for (size_t c = 0; c < sizeof(sizes) / sizeof(sizes[0]); c++) {
		size_t n = sizes[c];
		vtp_access_entry *arr = NULL;
		size_t got = 0;
		int64_t total = -1;

		batch_init(b, user, n);
		assert_int_equal(vtp_store_access_log_insert_many(fx->s, b->e, n), 0);
		assert_int_equal(vtp_store_access_log_list(fx->s, b->rec, 1000, 0,
							   &arr, &got, &total),
				 0);
		assert_int_equal(total, n);
		assert_int_equal(got, n);
		/* newest first, every field as given */
		for (size_t k = 0; k < got; k++) {
			const vtp_access_entry *want = &b->e[n - 1 - k];

			assert_int_equal(arr[k].accessed_at, want->accessed_at);
			assert_string_equal(arr[k].user_agent, want->user_agent);
			assert_string_equal(arr[k].recording_id, b->rec);
			assert_string_equal(arr[k].access_type, "view");
			if (want->id[0])
				assert_string_equal(arr[k].id, want->id);
			else
				assert_true(vtp_uuid_parse(arr[k].id, NULL));
			if (want->accessed_by)
				assert_string_equal(arr[k].accessed_by, user);
			else
				assert_null(arr[k].accessed_by);
			if (want->ip_address)
				assert_string_equal(arr[k].ip_address, want->ip_address);
			else
				assert_null(arr[k].ip_address);
			if (want->detail)
				assert_json_equal(arr[k].detail, want->detail);
			else
				assert_null(arr[k].detail);
		}
		vtp_access_entry_free_array(arr, got);
	}
	vtp_free(b);
}

/* One bad entry anywhere in a batch: the call fails and none of the batch
 * is stored, whether the entry is refused before SQL (ids, NULL type) or by
 * the database (JSON check, foreign key, duplicate key). The connection is
 * fine afterwards. */
static void test_access_log_insert_many_atomic(void **state)
{
	fixture *fx = *state;
	enum { BAD_RECORDING, BAD_ID, BAD_BY, NULL_TYPE, LONG_TYPE, BAD_JSON,
	       UNKNOWN_USER, DUPLICATE_ID, EXISTING_ID };
	static const struct {
		const char *name;
		int what;
		size_t n, at;
		int rc; /* 0: any failure */
	} cases[] = {
		{"non-UUID recording_id in the middle", BAD_RECORDING, BATCH_MAX, 150, VTP_EINVAL},
		{"non-UUID recording_id first", BAD_RECORDING, BATCH_MAX, 0, VTP_EINVAL},
		{"non-UUID recording_id last", BAD_RECORDING, BATCH_MAX, BATCH_MAX - 1, VTP_EINVAL},
		{"non-UUID recording_id, batch of 2", BAD_RECORDING, 2, 1, VTP_EINVAL},
		{"non-UUID recording_id, batch of 1", BAD_RECORDING, 1, 0, VTP_EINVAL},
		{"non-UUID id", BAD_ID, BATCH_MAX, 200, VTP_EINVAL},
		{"non-UUID accessed_by", BAD_BY, BATCH_MAX, 77, VTP_EINVAL},
		{"NULL access_type", NULL_TYPE, BATCH_MAX, 299, VTP_EINVAL},
		{"access_type over 50 characters", LONG_TYPE, BATCH_MAX, 120, 0},
		{"detail not JSON", BAD_JSON, BATCH_MAX, 250, VTP_EINVAL},
		{"detail not JSON, batch of 1", BAD_JSON, 1, 0, VTP_EINVAL},
		{"accessed_by no such user", UNKNOWN_USER, BATCH_MAX, 10, 0},
		{"same id twice in the batch", DUPLICATE_ID, BATCH_MAX, 280, VTP_ECONFLICT},
		{"id already stored", EXISTING_ID, BATCH_MAX, 90, VTP_ECONFLICT},
	};
	char user[VTP_UUID_BUFLEN], ghost[VTP_UUID_BUFLEN], stored[VTP_UUID_BUFLEN];
	char long_type[64];
	batch *b = vtp_malloc(sizeof(*b));
	vtp_access_entry one;

	make_user(fx, "student", user);
	vtp_uuid_v4(ghost);
	memset(long_type, 't', 51);
	long_type[51] = '\0';
	/* an entry whose id a batch will reuse */
	memset(&one, 0, sizeof(one));
	vtp_uuid_v7(one.id);
	vtp_uuid_v4(one.recording_id);
	one.access_type = "view";
	one.accessed_at = T0;
	assert_int_equal(vtp_store_access_log_insert(fx->s, &one), 0);
	memcpy(stored, one.id, VTP_UUID_BUFLEN);

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		vtp_access_entry *e;
		int rc;

		batch_init(b, user, cases[c].n);
		e = &b->e[cases[c].at];
		switch (cases[c].what) {
		case BAD_RECORDING:
			snprintf(e->recording_id, sizeof(e->recording_id), "%s",
				 "not-a-recording-id");
			break;
		case BAD_ID:
			snprintf(e->id, sizeof(e->id), "%s", "1234");
			break;
		case BAD_BY:
			e->accessed_by = "00000000-0000-0000-0000-00000000000g";
			break;
		case NULL_TYPE:
			e->access_type = NULL;
			break;
		case LONG_TYPE:
			e->access_type = long_type;
			break;
		case BAD_JSON:
			e->detail = "{not json";
			break;
		case UNKNOWN_USER:
			e->accessed_by = ghost;
			break;
		case DUPLICATE_ID:
			memcpy(e->id, b->e[4].id, VTP_UUID_BUFLEN);
			break;
		case EXISTING_ID:
			memcpy(e->id, stored, VTP_UUID_BUFLEN);
			break;
		}
		rc = vtp_store_access_log_insert_many(fx->s, b->e, cases[c].n);
		if (cases[c].rc ? rc != cases[c].rc : rc >= 0)
			fail_msg("%s: got %d, want %d", cases[c].name, rc, cases[c].rc);
		if (access_total(fx, b->rec) != 0)
			fail_msg("%s: %lld of the batch stored", cases[c].name,
				 (long long)access_total(fx, b->rec));

		/* the same batch repaired goes in whole, on a connection that
		 * is not left inside a transaction */
		batch_init(b, user, cases[c].n);
		assert_int_equal(vtp_store_access_log_insert_many(fx->s, b->e,
								  cases[c].n),
				 0);
		assert_int_equal(access_total(fx, b->rec), cases[c].n);
	}
	/* the entry whose id was reused is still the only one of its recording */
	assert_int_equal(access_total(fx, one.recording_id), 1);
	vtp_free(b);
}

static void test_participants(void **state)
{
	fixture *fx = *state;
	char starter[VTP_UUID_BUFLEN], room[64], rec[VTP_UUID_BUFLEN],
		ghost[VTP_UUID_BUFLEN];
	vtp_participant p, *arr = NULL;
	vtp_recording got;
	char peer[16];
	size_t n = 0;

	make_user(fx, "instructor", starter);
	unique(room, sizeof(room), "room");
	make_rec(fx, room, starter, "recording", T0, rec);
	for (int i = 0; i < 3; i++) {
		memset(&p, 0, sizeof(p));
		snprintf(peer, sizeof(peer), "peer-%d", i);
		memcpy(p.recording_id, rec, VTP_UUID_BUFLEN);
		p.peer_id = peer;
		p.user_id = i == 0 ? starter : NULL;
		p.full_name = i == 0 ? "Teacher" : "Guest";
		p.role = i == 0 ? "instructor" : NULL;
		p.joined_at = T0 + 300 - i * 100; /* inserted newest first */
		p.left_at = i == 1 ? T0 + 999 : 0;
		assert_int_equal(vtp_store_participant_insert(fx->s, &p), 0);
	}
	assert_int_equal(vtp_store_participant_list(fx->s, rec, &arr, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(arr[0].peer_id, "peer-2");
	assert_int_equal(arr[0].joined_at, T0 + 100);
	assert_null(arr[0].user_id);
	assert_int_equal(arr[0].left_at, 0);
	assert_string_equal(arr[1].peer_id, "peer-1");
	assert_int_equal(arr[1].left_at, T0 + 999);
	assert_string_equal(arr[2].peer_id, "peer-0");
	assert_string_equal(arr[2].user_id, starter);
	assert_string_equal(arr[2].role, "instructor");
	assert_string_equal(arr[2].recording_id, rec);
	vtp_participant_free_array(arr, n);

	assert_int_equal(vtp_store_recording_get(fx->s, rec, &got), 0);
	assert_int_equal(got.participant_count, 3);
	vtp_recording_clear(&got);

	vtp_uuid_v4(ghost);
	assert_int_equal(vtp_store_participant_list(fx->s, ghost, &arr, &n), 0);
	assert_int_equal(n, 0);
	/* A participant of no recording is refused. */
	memcpy(p.recording_id, ghost, VTP_UUID_BUFLEN);
	assert_int_equal(vtp_store_participant_insert(fx->s, &p), VTP_EINVAL);
}

static void test_times_roundtrip(void **state)
{
	fixture *fx = *state;
	static const int64_t times[] = {
		1,
		999,
		INT64_C(951782400000),      /* 2000-02-29 */
		INT64_C(1795000000123),
		INT64_C(1795000000999),
		INT64_C(4102444799999),     /* 2099-12-31T23:59:59.999Z */
		INT64_C(253402300799999),   /* 9999-12-31T23:59:59.999Z */
	};

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		char email[96], local[48];
		vtp_user u = {0}, got;

		unique(local, sizeof(local), "t");
		snprintf(email, sizeof(email), "%s@example.com", local);
		vtp_uuid_v4(u.id);
		u.email = email;
		u.full_name = "T";
		u.role = "student";
		u.created_at = times[i];
		assert_int_equal(vtp_store_user_insert(fx->s, &u), 0);
		assert_int_equal(vtp_store_user_by_id(fx->s, u.id, &got), 0);
		assert_int_equal(got.created_at, times[i]);
		vtp_user_clear(&got);
	}
}

/* ---- concurrency -------------------------------------------------------- */

#define RACERS 8

typedef struct racer {
	fixture *fx;
	pthread_barrier_t *barrier;
	const char *room;
	const char *starter;
	int rc;
} racer;

static void *race_insert(void *arg)
{
	racer *r = arg;
	vtp_recording rec;

	rec_init(&rec, r->room, r->starter, "recording", T0);
	pthread_barrier_wait(r->barrier);
	r->rc = vtp_store_recording_insert(r->fx->s, &rec);
	return NULL;
}

static void test_concurrent_active_insert(void **state)
{
	fixture *fx = *state;
	char starter[VTP_UUID_BUFLEN], room[64];
	pthread_t th[RACERS];
	racer rs[RACERS];
	pthread_barrier_t barrier;
	int ok = 0, conflict = 0;

	make_user(fx, "instructor", starter);
	for (int round = 0; round < 3; round++) {
		unique(room, sizeof(room), "race");
		pthread_barrier_init(&barrier, NULL, RACERS);
		for (int i = 0; i < RACERS; i++) {
			rs[i] = (racer){.fx = fx, .barrier = &barrier,
					.room = room, .starter = starter};
			assert_int_equal(pthread_create(&th[i], NULL,
							race_insert, &rs[i]),
					 0);
		}
		ok = conflict = 0;
		for (int i = 0; i < RACERS; i++) {
			pthread_join(th[i], NULL);
			ok += rs[i].rc == 0;
			conflict += rs[i].rc == VTP_ECONFLICT;
		}
		pthread_barrier_destroy(&barrier);
		assert_int_equal(ok, 1);
		assert_int_equal(conflict, RACERS - 1);
	}
}

/* The processing queue and the recording's processing statuses. */
typedef struct claimer {
	fixture *fx;
	pthread_barrier_t *barrier;
	char ids[32][VTP_UUID_BUFLEN];
	int n;
	int rc;
} claimer;

static void *claim_all(void *arg)
{
	claimer *c = arg;
	vtp_job job;
	int rc;

	pthread_barrier_wait(c->barrier);
	while ((rc = vtp_store_job_claim(c->fx->s, "node-c", T0 + 100000, &job)) == 0) {
		if (c->n < 32)
			memcpy(c->ids[c->n], job.id, VTP_UUID_BUFLEN);
		c->n++;
	}
	c->rc = rc == VTP_ENOTFOUND ? 0 : rc;
	return NULL;
}

typedef struct seen_candidates {
	int n;
	char id[4][VTP_UUID_BUFLEN];
	int width[4], fps[4];
	bool has_layout[4];
} seen_candidates;

static int see_candidate(void *ctx, const vtp_job_candidate *c)
{
	seen_candidates *sc = ctx;

	if (sc->n < 4) {
		memcpy(sc->id[sc->n], c->id, VTP_UUID_BUFLEN);
		sc->width[sc->n] = c->width;
		sc->fps[sc->n] = c->fps;
		sc->has_layout[sc->n] = c->layout != NULL;
	}
	sc->n++;
	return 0;
}

/* What a claimer weighs (src/jobs "Capacity"): the runnable queued jobs,
 * oldest first, with their recording's output settings; and a claim of one
 * of them by id, which a second claimer loses. */
static void test_job_candidates(void **state)
{
	fixture *fx = *state;
	char user[VTP_UUID_BUFLEN], room[64], rec[VTP_UUID_BUFLEN], rec2[VTP_UUID_BUFLEN];
	seen_candidates sc;
	vtp_job job, job2, got;

	make_user(fx, "instructor", user);
	unique(room, sizeof(room), "cand");
	make_rec(fx, room, user, "stopped", T0, rec);
	unique(room, sizeof(room), "cand");
	make_rec(fx, room, user, "stopped", T0, rec2);
	while (vtp_store_job_claim(fx->s, "drain", T0 + 100000, &got) == 0)
		assert_int_equal(vtp_store_job_finish(fx->s, got.id, true, NULL), 0);

	assert_int_equal(vtp_store_job_enqueue(fx->s, rec, T0 + 10, &job), 0);
	assert_int_equal(vtp_store_job_enqueue(fx->s, rec2, T0 + 20, &job2), 0);
	/* only runnable ones: the second is not yet */
	memset(&sc, 0, sizeof(sc));
	assert_int_equal(vtp_store_job_candidates(fx->s, T0 + 15, 8, see_candidate, &sc), 0);
	assert_int_equal(sc.n, 1);
	assert_string_equal(sc.id[0], job.id);
	memset(&sc, 0, sizeof(sc));
	assert_int_equal(vtp_store_job_candidates(fx->s, T0 + 30, 8, see_candidate, &sc), 0);
	assert_int_equal(sc.n, 2);
	assert_string_equal(sc.id[0], job.id);
	assert_string_equal(sc.id[1], job2.id);
	assert_int_equal(sc.width[0], 1280);
	assert_int_equal(sc.fps[0], 30);
	assert_true(sc.has_layout[0]);
	/* the limit */
	memset(&sc, 0, sizeof(sc));
	assert_int_equal(vtp_store_job_candidates(fx->s, T0 + 30, 1, see_candidate, &sc), 0);
	assert_int_equal(sc.n, 1);

	/* the later one claimed by id; a second claimer of it loses */
	assert_int_equal(vtp_store_job_claim_id(fx->s, job2.id, "node-a", T0 + 30, &got), 0);
	assert_string_equal(got.id, job2.id);
	assert_string_equal(got.recording_id, rec2);
	assert_int_equal(got.attempts, 1);
	assert_int_equal(vtp_store_job_claim_id(fx->s, job2.id, "node-b", T0 + 30, &got),
			 VTP_ECONFLICT);
	memset(&sc, 0, sizeof(sc));
	assert_int_equal(vtp_store_job_candidates(fx->s, T0 + 30, 8, see_candidate, &sc), 0);
	assert_int_equal(sc.n, 1);
	assert_string_equal(sc.id[0], job.id);
	assert_int_equal(vtp_store_job_claim_id(fx->s, "not-an-id", "node-a", T0, &got),
			 VTP_ENOTFOUND);
	assert_int_equal(vtp_store_job_claim_id(fx->s, job.id, "node-a", T0 + 30, &got), 0);
	assert_int_equal(vtp_store_job_finish(fx->s, job.id, true, NULL), 0);
	assert_int_equal(vtp_store_job_finish(fx->s, job2.id, true, NULL), 0);
}

typedef struct seen_tracks {
	int n;
	vtp_track_state t[8];
} seen_tracks;

static int see_track(void *ctx, const vtp_track_state *t)
{
	seen_tracks *st = ctx;

	if (st->n < 8)
		st->t[st->n++] = *t;
	return 0;
}

typedef struct seen_pending {
	int n;
	vtp_track_pending t[8];
	char room[8][64];
} seen_pending;

static int see_pending(void *ctx, const vtp_track_pending *t)
{
	seen_pending *sp = ctx;

	if (sp->n < 8) {
		sp->t[sp->n] = *t;
		snprintf(sp->room[sp->n], sizeof(sp->room[0]), "%s", t->room_id);
		sp->n++;
	}
	return 0;
}

/* Tracks in segments: registration, commits that only grow, the last
 * segment, nodes' heartbeats, what a restart must still commit, and the
 * merge of several nodes' track statistics. */
static void test_track_segments(void **state)
{
	fixture *fx = *state;
	char user[VTP_UUID_BUFLEN], room[64], rec[VTP_UUID_BUFLEN], node[64];
	const char *t1 = "11111111-1111-4111-8111-111111111111";
	const char *t2 = "22222222-2222-4222-8222-222222222222";
	vtp_recording r;
	seen_tracks st;
	seen_pending sp;

	make_user(fx, "instructor", user);
	unique(room, sizeof(room), "seg");
	unique(node, sizeof(node), "node");
	make_rec(fx, room, user, "recording", T0, rec);
	assert_int_equal(vtp_store_track_register(fx->s, rec, t1, node), 0);
	assert_int_equal(vtp_store_track_register(fx->s, rec, t1, node), 0); /* again: nothing */
	assert_int_equal(vtp_store_track_register(fx->s, rec, t2, "other-node"), 0);
	assert_int_equal(vtp_store_track_register(fx->s, rec, "bad", node), VTP_EINVAL);
	assert_int_equal(vtp_store_track_commit(fx->s, rec, t1, node, 1, false, T0), 0);
	assert_int_equal(vtp_store_track_commit(fx->s, rec, t1, node, 2, false, T0), 0);
	/* a late retry of segment 1 does not move the count back */
	assert_int_equal(vtp_store_track_commit(fx->s, rec, t1, node, 1, false, T0), 0);
	assert_int_equal(vtp_store_track_commit(fx->s, rec, t1, node, 0, false, T0), VTP_EINVAL);
	/* a recording that does not exist */
	assert_int_equal(vtp_store_track_commit(fx->s, "33333333-3333-4333-8333-333333333333", t1,
						node, 1, false, T0),
			 VTP_EINVAL);
	assert_int_equal(vtp_store_node_seen(fx->s, node, T0 + 5000), 0);
	assert_int_equal(vtp_store_node_seen(fx->s, node, T0 + 9000), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(vtp_store_track_states(fx->s, rec, see_track, &st), 0);
	assert_int_equal(st.n, 2);
	assert_string_equal(st.t[0].track_id, t1);
	assert_string_equal(st.t[0].node_id, node);
	assert_int_equal(st.t[0].segments, 2);
	assert_int_equal(st.t[0].last_segment, 0);
	assert_int_equal(st.t[0].node_seen_ms, T0 + 9000);
	assert_int_equal(st.t[1].segments, 0);
	assert_int_equal(st.t[1].node_seen_ms, 0); /* never seen */
	/* not whole: a restart of node must commit from segment 3 */
	memset(&sp, 0, sizeof(sp));
	assert_int_equal(vtp_store_tracks_unfinished(fx->s, node, see_pending, &sp), 0);
	assert_int_equal(sp.n, 1);
	assert_string_equal(sp.t[0].recording_id, rec);
	assert_string_equal(sp.t[0].track_id, t1);
	assert_string_equal(sp.room[0], room);
	assert_int_equal(sp.t[0].segments, 2);
	/* its last segment: whole */
	assert_int_equal(vtp_store_track_commit(fx->s, rec, t1, node, 3, true, T0), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(vtp_store_track_states(fx->s, rec, see_track, &st), 0);
	assert_int_equal(st.t[0].segments, 3);
	assert_int_equal(st.t[0].last_segment, 3);
	memset(&sp, 0, sizeof(sp));
	assert_int_equal(vtp_store_tracks_unfinished(fx->s, node, see_pending, &sp), 0);
	assert_int_equal(sp.n, 0);

	/* statistics from two nodes merge by trackId */
	assert_int_equal(vtp_store_recording_merge_tracks(fx->s, rec,
							  "[{\"trackId\":\"a\",\"packets\":1}]"),
			 0);
	assert_int_equal(vtp_store_recording_merge_tracks(
				 fx->s, rec,
				 "[{\"trackId\":\"b\",\"packets\":2},{\"trackId\":\"a\",\"packets\":3}]"),
			 0);
	assert_int_equal(vtp_store_recording_merge_tracks(fx->s, rec, "{}"), VTP_EINVAL);
	assert_int_equal(vtp_store_recording_get(fx->s, rec, &r), 0);
	assert_non_null(r.tracks);
	assert_non_null(strstr(r.tracks, "\"b\""));
	{
		/* PostgreSQL gives JSONB back in its own spacing: compared parsed */
		json_t *arr = json_loads(r.tracks, 0, NULL);

		assert_true(json_is_array(arr));
		assert_int_equal(json_array_size(arr), 2);
		assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "trackId")),
				    "b");
		assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "trackId")),
				    "a");
		assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "packets")),
				 3);
		json_decref(arr);
	}
	vtp_recording_clear(&r);
}

static void test_jobs(void **state)
{
	fixture *fx = *state;
	char user[VTP_UUID_BUFLEN], room[64], rec[VTP_UUID_BUFLEN], rec2[VTP_UUID_BUFLEN];
	char recs[20][VTP_UUID_BUFLEN];
	vtp_job job, got, again;
	vtp_recording r;
	uint64_t gen;
	int count = -1;

	make_user(fx, "instructor", user);
	unique(room, sizeof(room), "jobs");
	make_rec(fx, room, user, "stopped", T0, rec);
	unique(room, sizeof(room), "jobs");
	make_rec(fx, room, user, "stopped", T0, rec2);

	/* nothing else is queued: every earlier job of this run is finished */
	while (vtp_store_job_claim(fx->s, "drain", T0 + 100000, &got) == 0)
		assert_int_equal(vtp_store_job_finish(fx->s, got.id, true, NULL), 0);

	gen = vtp_store_generation(fx->s);
	assert_int_equal(vtp_store_job_enqueue(fx->s, rec, T0, &job), 0);
	assert_string_equal(job.recording_id, rec);
	assert_int_equal(vtp_store_job_enqueue(fx->s, rec, T0, NULL), VTP_ECONFLICT);
	assert_int_equal(vtp_store_job_claim(fx->s, "node-a", T0 + 1, &got), 0);
	assert_string_equal(got.id, job.id);
	assert_int_equal(got.attempts, 1);
	/* running still blocks a second job for the recording */
	assert_int_equal(vtp_store_job_enqueue(fx->s, rec, T0, NULL), VTP_ECONFLICT);
	assert_int_equal(vtp_store_job_claim(fx->s, "node-a", T0 + 1, &again), VTP_ENOTFOUND);
	/* retry later: not runnable before run_after */
	assert_int_equal(vtp_store_job_retry(fx->s, job.id, T0 + 5000, "crashed"), 0);
	assert_int_equal(vtp_store_job_retry(fx->s, job.id, T0 + 5000, "twice"), VTP_ECONFLICT);
	assert_int_equal(vtp_store_job_claim(fx->s, "node-a", T0 + 4999, &again), VTP_ENOTFOUND);
	assert_int_equal(vtp_store_job_claim(fx->s, "node-a", T0 + 5000, &again), 0);
	assert_int_equal(again.attempts, 2);
	/* a node restart puts its running jobs back */
	assert_int_equal(vtp_store_job_requeue_node(fx->s, "node-b", T0 + 6000, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(vtp_store_job_requeue_node(fx->s, "node-a", T0 + 6000, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(vtp_store_job_claim(fx->s, "node-b", T0 + 6000, &again), 0);
	assert_int_equal(again.attempts, 3);
	assert_int_equal(vtp_store_job_finish(fx->s, again.id, false, "no_media"), 0);
	assert_int_equal(vtp_store_job_finish(fx->s, again.id, true, NULL), VTP_ECONFLICT);
	/* a finished job frees the recording for a new one */
	assert_int_equal(vtp_store_job_enqueue(fx->s, rec, T0, &job), 0);
	assert_int_equal(vtp_store_job_claim(fx->s, "node-a", T0 + 7000, &got), 0);
	assert_int_equal(vtp_store_job_finish(fx->s, got.id, true, NULL), 0);
	/* the queue is not data that rendered answers depend on */
	assert_true(fx->backend[0] == 'p' || vtp_store_generation(fx->s) == gen);

	/* processing statuses */
	assert_int_equal(vtp_store_recording_progress(fx->s, rec, 10), VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_processing(fx->s, rec), 0);
	assert_int_equal(vtp_store_recording_progress(fx->s, rec, 55), 0);
	assert_int_equal(vtp_store_recording_progress(fx->s, rec, 101), VTP_EINVAL);
	assert_int_equal(vtp_store_recording_get(fx->s, rec, &r), 0);
	assert_string_equal(r.status, "processing");
	assert_int_equal(r.progress, 55);
	vtp_recording_clear(&r);
	assert_int_equal(vtp_store_recording_done(fx->s, rec, "recordings/x/recording.webm", 12345,
						  61.5, "{\"sha256\":\"ab\"}", T0 + 9000), 0);
	assert_int_equal(vtp_store_recording_get(fx->s, rec, &r), 0);
	assert_string_equal(r.status, "done");
	assert_int_equal(r.progress, 100);
	assert_int_equal(r.file_size, 12345);
	assert_true(r.duration_seconds > 61.49 && r.duration_seconds < 61.51);
	assert_string_equal(r.file_path, "recordings/x/recording.webm");
	assert_int_equal(r.completed_at, T0 + 9000);
	assert_non_null(strstr(r.metadata, "sha256"));
	vtp_recording_clear(&r);
	assert_int_equal(vtp_store_recording_processing(fx->s, rec), VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_failed(fx->s, rec, "late", 0), VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_failed(fx->s, rec2, "no_media", T0 + 10), 0);
	assert_int_equal(vtp_store_recording_get(fx->s, rec2, &r), 0);
	assert_string_equal(r.status, "failed");
	assert_string_equal(r.error, "no_media");
	vtp_recording_clear(&r);
	/* retry: failed -> stopped with the error and completion cleared; only
	 * from failed, never for a deleted one */
	assert_int_equal(vtp_store_recording_requeue(fx->s, rec), VTP_ECONFLICT); /* done */
	assert_int_equal(vtp_store_recording_requeue(fx->s, rec2), 0);
	assert_int_equal(vtp_store_recording_get(fx->s, rec2, &r), 0);
	assert_string_equal(r.status, "stopped");
	assert_null(r.error);
	assert_int_equal(r.completed_at, 0);
	vtp_recording_clear(&r);
	assert_int_equal(vtp_store_recording_requeue(fx->s, rec2), VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_failed(fx->s, rec2, "again", T0 + 20), 0);
	assert_int_equal(vtp_store_recording_soft_delete(fx->s, rec2, T0 + 30), 0);
	assert_int_equal(vtp_store_recording_requeue(fx->s, rec2), VTP_ECONFLICT);
	assert_int_equal(vtp_store_recording_restore(fx->s, rec2), 0);

	/* a shutdown gives the attempt back: release does not count it */
	assert_int_equal(vtp_store_job_enqueue(fx->s, rec2, T0, &job), 0);
	assert_int_equal(vtp_store_job_claim(fx->s, "node-r", T0 + 1, &got), 0);
	assert_string_equal(got.id, job.id);
	assert_int_equal(got.attempts, 1);
	assert_int_equal(vtp_store_job_release(fx->s, got.id, T0 + 1, "interrupted"), 0);
	assert_int_equal(vtp_store_job_release(fx->s, got.id, T0 + 1, "twice"), VTP_ECONFLICT);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(vtp_store_job_claim(fx->s, "node-r", T0 + 2, &got), 0);
		assert_int_equal(got.attempts, 1);
		assert_int_equal(vtp_store_job_release(fx->s, got.id, T0 + 2, "interrupted"), 0);
	}
	assert_int_equal(vtp_store_job_claim(fx->s, "node-r", T0 + 3, &got), 0);
	assert_int_equal(vtp_store_job_finish(fx->s, got.id, true, NULL), 0);

	/* concurrent claimers: each job exactly once */
	for (int i = 0; i < 20; i++) {
		unique(room, sizeof(room), "claim");
		make_rec(fx, room, user, "stopped", T0, recs[i]);
		assert_int_equal(vtp_store_job_enqueue(fx->s, recs[i], T0, NULL), 0);
	}
	{
		pthread_t th[4];
		claimer cs[4];
		pthread_barrier_t barrier;
		int total = 0;

		pthread_barrier_init(&barrier, NULL, 4);
		for (int i = 0; i < 4; i++) {
			memset(&cs[i], 0, sizeof(cs[i]));
			cs[i].fx = fx;
			cs[i].barrier = &barrier;
			assert_int_equal(pthread_create(&th[i], NULL, claim_all, &cs[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(cs[i].rc, 0);
			total += cs[i].n;
		}
		pthread_barrier_destroy(&barrier);
		assert_int_equal(total, 20);
		for (int i = 0; i < 4; i++)
			for (int k = 0; k < cs[i].n; k++)
				for (int j = 0; j < 4; j++)
					for (int m = 0; m < cs[j].n; m++)
						if (i != j || k != m)
							assert_string_not_equal(cs[i].ids[k], cs[j].ids[m]);
	}
}

typedef struct migrator {
	const char *url;
	pthread_barrier_t *barrier;
	int rc, applied;
} migrator;

static void *race_migrate(void *arg)
{
	migrator *m = arg;
	vtp_store *s = NULL;
	char err[256];

	m->rc = vtp_store_open(m->url, 1, &s, err, sizeof(err));
	pthread_barrier_wait(m->barrier);
	if (m->rc == 0)
		m->rc = vtp_store_migrate(s, &m->applied);
	vtp_store_free(s);
	return NULL;
}

static int pg_admin_exec(const char *admin_url, const char *sql);
static void replace_dbname(const char *url, const char *db, char *out,
			   size_t n);

/* Several stores (as from several processes) migrating one fresh database
 * at once: every version is applied exactly once. */
static void test_concurrent_migrate(void **state)
{
	fixture *fx = *state;
	char url[1100], name[64], sql[128];
	pthread_t th[4];
	migrator ms[4];
	pthread_barrier_t barrier;
	int total = 0;

	if (strcmp(fx->backend, "sqlite") == 0) {
		snprintf(url, sizeof(url), "sqlite://%s/migrate-race.db",
			 fx->dir);
	} else {
		unique(name, sizeof(name), "vtp_store_mig");
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
		assert_int_equal(pg_admin_exec(fx->admin_url, sql), 0);
		replace_dbname(fx->admin_url, name, url, sizeof(url));
	}
	pthread_barrier_init(&barrier, NULL, 4);
	for (int i = 0; i < 4; i++) {
		ms[i] = (migrator){.url = url, .barrier = &barrier};
		assert_int_equal(pthread_create(&th[i], NULL, race_migrate,
						&ms[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ms[i].rc, 0);
		total += ms[i].applied;
	}
	pthread_barrier_destroy(&barrier);
	assert_int_equal(total, migration_count());
	if (strcmp(fx->backend, "postgres") == 0) {
		snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)",
			 name);
		assert_int_equal(pg_admin_exec(fx->admin_url, sql), 0);
	}
}

/* PostgreSQL: connections killed under the pool are re-established on the
 * next call (the server restarting looks the same to libpq). */
static void test_reconnect(void **state)
{
	fixture *fx = *state;
	char sql[256];
	int64_t count = 0;

	if (strcmp(fx->backend, "postgres") != 0)
		return;
	assert_int_equal(vtp_store_ping(fx->s), 0);
	snprintf(sql, sizeof(sql),
		 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		 " WHERE datname = '%s' AND pid <> pg_backend_pid()",
		 fx->dbname);
	assert_int_equal(pg_admin_exec(fx->admin_url, sql), 0);
	usleep(100 * 1000);
	assert_int_equal(vtp_store_ping(fx->s), 0);
	assert_int_equal(vtp_store_user_count(fx->s, &count), 0);
	assert_true(count > 0);
}

static void test_open_errors(void **state)
{
	vtp_store *s = NULL;
	char err[256];

	(void)state;
	assert_int_equal(vtp_store_open("mysql://x", 1, &s, err, sizeof(err)),
			 VTP_EINVAL);
	assert_null(s);
	assert_int_equal(vtp_store_open("sqlite:///tmp/x.db", 0, &s, err,
					sizeof(err)),
			 VTP_EINVAL);
	assert_int_equal(vtp_store_open("sqlite:///proc/no/such/x.db", 1, &s,
					err, sizeof(err)),
			 VTP_EUNAVAIL);
	/* Port 1 refuses; the message must not reveal the password. */
	assert_int_equal(vtp_store_open("postgres://u:s3cretpw@127.0.0.1:1/db",
					1, &s, err, sizeof(err)),
			 VTP_EUNAVAIL);
	assert_null(strstr(err, "s3cretpw"));
	assert_null(strchr(err, '\n'));
	assert_int_equal(vtp_store_open("postgresql://u:s3cr%zzpw@h/db", 1, &s,
					err, sizeof(err)),
			 VTP_EINVAL);
	assert_null(strstr(err, "s3cr"));
}

/* ---- fixtures ----------------------------------------------------------- */

static int pg_admin_exec(const char *admin_url, const char *sql)
{
	PGconn *pg = PQconnectdb(admin_url);
	PGresult *res;
	int rc = 0;

	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "admin connect: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return -1;
	}
	res = PQexec(pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(pg));
		rc = -1;
	}
	PQclear(res);
	PQfinish(pg);
	return rc;
}

/* postgres://user@host:port/db?x -> same with another db name. */
static void replace_dbname(const char *url, const char *db, char *out, size_t n)
{
	const char *hostpart = strstr(url, "://");
	const char *slash = hostpart ? strchr(hostpart + 3, '/') : NULL;
	const char *query;
	int prefix;

	if (!slash)
		slash = url + strlen(url);
	query = strchr(slash, '?');
	prefix = (int)(slash - url);
	snprintf(out, n, "%.*s/%s%s", prefix, url, db, query ? query : "");
}

static int open_and_migrate(fixture *fx)
{
	char err[256];
	int rc;

	rc = vtp_store_open(fx->url, RACERS, &fx->s, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "vtp_store_open(%s): %s\n", fx->backend, err);
		return -1;
	}
	if (vtp_store_migrate(fx->s, &fx->first_applied) != 0) {
		fprintf(stderr, "migrate(%s) failed\n", fx->backend);
		return -1;
	}
	return 0;
}

static int setup_sqlite(void **state)
{
	static fixture fx;

	memset(&fx, 0, sizeof(fx));
	fx.backend = "sqlite";
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/vtp-store-test.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	/* absolute path, and a parent directory the store must create */
	snprintf(fx.url, sizeof(fx.url), "sqlite://%s/sub/vtp.db", fx.dir);
	*state = &fx;
	return open_and_migrate(&fx);
}

static int teardown_sqlite(void **state)
{
	fixture *fx = *state;
	char cmd[400];

	vtp_store_free(fx->s);
	fx->s = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int setup_pg(void **state)
{
	static fixture fx;
	const char *file = getenv("VTP_TEST_PG_URL_FILE");
	char sql[128];
	FILE *f;
	size_t len;

	memset(&fx, 0, sizeof(fx));
	fx.backend = "postgres";
	*state = &fx;
	if (!file || !(f = fopen(file, "r"))) {
		fprintf(stderr, "VTP_TEST_PG_URL_FILE (%s) is missing: start "
				"scripts/test-pg.sh\n",
			file ? file : "unset");
		return -1;
	}
	if (!fgets(fx.admin_url, sizeof(fx.admin_url), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	len = strlen(fx.admin_url);
	while (len && (fx.admin_url[len - 1] == '\n' ||
		       fx.admin_url[len - 1] == '\r'))
		fx.admin_url[--len] = '\0';
	unique(fx.dbname, sizeof(fx.dbname), "vtp_store_test");
	for (char *p = fx.dbname; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", fx.dbname);
	if (pg_admin_exec(fx.admin_url, sql) != 0)
		return -1;
	replace_dbname(fx.admin_url, fx.dbname, fx.url, sizeof(fx.url));
	return open_and_migrate(&fx);
}

static int teardown_pg(void **state)
{
	fixture *fx = *state;
	char sql[128];

	vtp_store_free(fx->s);
	fx->s = NULL;
	if (!fx->dbname[0])
		return 0;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
		 fx->dbname);
	return pg_admin_exec(fx->admin_url, sql);
}

#define CASES(name)                                                           \
	const struct CMUnitTest name[] = {                                    \
		cmocka_unit_test(test_migrate_idempotent),                    \
		cmocka_unit_test(test_sqlite_files),                          \
		cmocka_unit_test(test_users),                                 \
		cmocka_unit_test(test_recording_active_room),                 \
		cmocka_unit_test(test_recording_get_fields),                  \
		cmocka_unit_test(test_soft_delete_restore),                   \
		cmocka_unit_test(test_list),                                  \
		cmocka_unit_test(test_list_owned_and_shared_pages),           \
		cmocka_unit_test(test_room_ids),                              \
		cmocka_unit_test(test_shares),                                \
		cmocka_unit_test(test_access_log),                            \
		cmocka_unit_test(test_access_log_insert_many),                \
		cmocka_unit_test(test_access_log_insert_many_atomic),         \
		cmocka_unit_test(test_participants),                          \
		cmocka_unit_test(test_times_roundtrip),                       \
		cmocka_unit_test(test_concurrent_active_insert),              \
		cmocka_unit_test(test_concurrent_migrate),                    \
		cmocka_unit_test(test_reconnect),                             \
		cmocka_unit_test(test_generation),                            \
		cmocka_unit_test(test_generation_shared),                     \
		cmocka_unit_test(test_db_clock),                              \
		cmocka_unit_test(test_presence),                              \
		cmocka_unit_test(test_watch),                                 \
		cmocka_unit_test(test_sqlite_other_processes),                \
		cmocka_unit_test(test_jobs),                                  \
		cmocka_unit_test(test_job_candidates),                        \
		cmocka_unit_test(test_track_segments),                        \
		cmocka_unit_test(test_unqueued),                              \
	}

/* ---- SQLite shared with other processes ------------------------------------ */

/* The other process of test_sqlite_other_processes, run as this program
 * re-executed (a forked copy would inherit SQLite's in-memory lock table):
 * "add EMAIL" inserts a user, "has EMAIL" exits 0 if the user is there. */
static int other_process(const char *url, const char *what, const char *email)
{
	vtp_store *s = NULL;
	vtp_user u;
	char err[256];
	int rc;

	if (vtp_store_open(url, 1, &s, err, sizeof(err)) != 0)
		return 2;
	memset(&u, 0, sizeof(u));
	if (strcmp(what, "add") == 0) {
		vtp_uuid_v4(u.id);
		u.email = (char *)email;
		u.full_name = "Other";
		u.role = "student";
		rc = vtp_store_user_insert(s, &u) == 0 ? 0 : 3;
	} else {
		rc = vtp_store_user_by_email(s, email, &u) == 0 ? 0 : 1;
		vtp_user_clear(&u);
	}
	vtp_store_free(s);
	return rc;
}

static int run_other(const char *url, const char *what, const char *email)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		execl("/proc/self/exe", "test_store", "--other-process", url, what, email,
		      (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* A second connection opened while the first holds its locks, then another
 * process closing its own connection: that process must not take the WAL
 * for its own (checkpoint and delete it) while this one still appends to
 * it, or what this one commits next is lost to every later opener. */
static void test_sqlite_other_processes(void **state)
{
	fixture *fx = *state;
	char url[512], path[400], err[256], email[128];
	vtp_store *s = NULL;
	void *second = NULL;
	vtp_user u;
	int64_t count = 0;

	if (strcmp(fx->backend, "sqlite") != 0)
		return;
	snprintf(path, sizeof(path), "%s/shared/vtp.db", fx->dir);
	snprintf(url, sizeof(url), "sqlite://%s", path);
	assert_int_equal(vtp_store_open(url, 2, &s, err, sizeof(err)), 0);
	assert_int_equal(vtp_store_migrate(s, NULL), 0);
	assert_int_equal(vtp_store_user_count(s, &count), 0); /* a read: locks held */
	assert_int_equal(vtp__sqlite_ops.connect(path, &second, err, sizeof(err)), 0);
	assert_int_equal(run_other(url, "add", "first@other.test"), 0);
	memset(&u, 0, sizeof(u));
	vtp_uuid_v4(u.id);
	u.email = email;
	snprintf(email, sizeof(email), "after@this.test");
	u.full_name = "After";
	u.role = "student";
	assert_int_equal(vtp_store_user_insert(s, &u), 0);
	assert_int_equal(run_other(url, "has", "first@other.test"), 0);
	assert_int_equal(run_other(url, "has", "after@this.test"), 0);
	vtp__sqlite_ops.disconnect(second);
	vtp_store_free(s);
}

int main(int argc, char **argv)
{
	CASES(sqlite_cases);
	CASES(postgres_cases);
	const struct CMUnitTest common_cases[] = {
		cmocka_unit_test(test_open_errors),
	};
	int failed = 0;

	if (argc == 5 && strcmp(argv[1], "--other-process") == 0)
		return other_process(argv[2], argv[3], argv[4]);
	vtp_log_init(getenv("VTP_TEST_LOG") ? VTP_LOG_DEBUG : VTP_LOG_ERROR,
		     false);
	failed += cmocka_run_group_tests_name("store_common", common_cases,
					      NULL, NULL);
	failed += cmocka_run_group_tests_name("store_sqlite", sqlite_cases,
					      setup_sqlite, teardown_sqlite);
	failed += cmocka_run_group_tests_name("store_postgres", postgres_cases,
					      setup_pg, teardown_pg);
	return failed ? 1 : 0;
}
