/* Client-facing JSON for recordings and their satellites. Optional values are
 * present as null so every object of a kind has the same shape. */
#include "recording.h"

#include <string.h>

#include "core/buf.h"
#include "core/timeutil.h"

static json_t *time_or_null(int64_t ms)
{
	char buf[VTP_TIME_BUFLEN];

	if (!ms)
		return json_null();
	vtp_time_format(ms, buf);
	return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

void vtp_recording_write_fields(vtp_jw *w, const vtp_recording *r)
{
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "id");
	vtp_jw_string(w, r->id);
	vtp_jw_key(w, "roomId");
	vtp_jw_string(w, r->room_id);
	vtp_jw_key(w, "title");
	vtp_jw_string(w, r->title);
	vtp_jw_key(w, "description");
	vtp_jw_string(w, r->description);
	vtp_jw_key(w, "startedBy");
	vtp_jw_string(w, r->started_by);
	vtp_jw_key(w, "status");
	vtp_jw_string(w, r->status);
	vtp_jw_key(w, "fileSize");
	if (r->file_size >= 0)
		vtp_jw_int(w, r->file_size);
	else
		vtp_jw_null(w);
	vtp_jw_key(w, "durationSeconds");
	if (r->duration_seconds >= 0)
		vtp_jw_double(w, r->duration_seconds);
	else
		vtp_jw_null(w);
	vtp_jw_key(w, "format");
	vtp_jw_string(w, r->format);
	vtp_jw_key(w, "videoCodec");
	vtp_jw_string(w, r->video_codec);
	vtp_jw_key(w, "audioCodec");
	vtp_jw_string(w, r->audio_codec);
	vtp_jw_key(w, "resolutionWidth");
	vtp_jw_int(w, r->resolution_width);
	vtp_jw_key(w, "resolutionHeight");
	vtp_jw_int(w, r->resolution_height);
	vtp_jw_key(w, "fps");
	vtp_jw_int(w, r->fps);
	vtp_jw_key(w, "bitrate");
	vtp_jw_int(w, r->bitrate);
	vtp_jw_key(w, "layout");
	vtp_jw_string(w, r->layout ? r->layout : "auto");
	vtp_jw_key(w, "createdAt");
	vtp_jw_time(w, r->created_at);
	vtp_jw_key(w, "startedAt");
	vtp_jw_time(w, r->created_at);
	vtp_jw_key(w, "stoppedAt");
	vtp_jw_time(w, r->stopped_at);
	vtp_jw_key(w, "completedAt");
	vtp_jw_time(w, r->completed_at);
	vtp_jw_key(w, "deletedAt");
	vtp_jw_time(w, r->deleted_at);
	vtp_jw_key(w, "progress");
	vtp_jw_int(w, r->progress);
	vtp_jw_key(w, "error");
	vtp_jw_string(w, r->error);
	vtp_jw_key(w, "participantCount");
	vtp_jw_int(w, r->participant_count);
	vtp_jw_key(w, "metadata");
	vtp_jw_raw(w, r->metadata ? r->metadata : "{}");
	vtp_jw_key(w, "tracks");
	if (r->tracks) {
		vtp_jw_raw(w, r->tracks);
	} else {
		vtp_jw_array_begin(w);
		vtp_jw_array_end(w);
	}
	/* what was lost or never decoded: [{code, message, trackId?, peerId?}] */
	vtp_jw_key(w, "warnings");
	if (r->warnings) {
		vtp_jw_raw(w, r->warnings);
	} else {
		vtp_jw_array_begin(w);
		vtp_jw_array_end(w);
	}
}

void vtp_recording_write_urls(vtp_jw *w, const char *download, const char *hls,
			      const char *thumbnail)
{
	vtp_jw_key(w, "downloadUrl");
	vtp_jw_string(w, download);
	vtp_jw_key(w, "hlsUrl");
	vtp_jw_string(w, hls);
	vtp_jw_key(w, "thumbnailUrl");
	vtp_jw_string(w, thumbnail);
}

void vtp_recording_write(vtp_jw *w, const vtp_recording *r)
{
	vtp_recording_write_fields(w, r);
	vtp_recording_write_urls(w, NULL, NULL, NULL);
	vtp_jw_object_end(w);
}

json_t *vtp_recording_json(const vtp_recording *r)
{
	vtp_buf b;
	vtp_jw w;
	json_t *o;

	vtp_buf_init(&b, 1 << 20);
	vtp_jw_init(&w, &b);
	vtp_recording_write(&w, r);
	o = json_loadb(b.data, b.len, 0, NULL);
	vtp_buf_free(&b);
	return o ? o : json_object();
}

json_t *vtp_share_json(const vtp_share *sh)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(sh->id));
	json_object_set_new(o, "recordingId", json_string(sh->recording_id));
	json_object_set_new(o, "userId", str_or_null(sh->user_id));
	json_object_set_new(o, "role", str_or_null(sh->role));
	json_object_set_new(o, "permission", json_string(sh->permission));
	json_object_set_new(o, "sharedBy", str_or_null(sh->shared_by));
	json_object_set_new(o, "sharedAt", time_or_null(sh->shared_at));
	return o;
}

json_t *vtp_participant_json(const vtp_participant *p)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(p->id));
	json_object_set_new(o, "peerId", str_or_null(p->peer_id));
	json_object_set_new(o, "userId", str_or_null(p->user_id));
	json_object_set_new(o, "fullName", str_or_null(p->full_name));
	json_object_set_new(o, "role", str_or_null(p->role));
	json_object_set_new(o, "joinedAt", time_or_null(p->joined_at));
	json_object_set_new(o, "leftAt", time_or_null(p->left_at));
	return o;
}

/* A track still takes media in these states: it has not ended yet. */
static bool track_open(const char *state)
{
	static const char *const open_states[] = {"waiting", "receiving", "idle", "misconfigured"};

	for (size_t i = 0; state && i < sizeof(open_states) / sizeof(open_states[0]); i++) {
		if (strcmp(state, open_states[i]) == 0)
			return true;
	}
	return false;
}

void vtp_participant_add_media(json_t *o, const char *peer_id, const vtp_recording *rec)
{
	json_t *tracks = rec->tracks ? json_loads(rec->tracks, 0, NULL) : NULL;
	json_t *meta = NULL, *talk, *seconds, *sources = json_array(), *t;
	size_t i;

	json_array_foreach(tracks, i, t) {
		const char *tp = json_string_value(json_object_get(t, "peerId"));
		const char *kind = json_string_value(json_object_get(t, "kind"));
		const char *source = json_string_value(json_object_get(t, "source"));
		json_t *first = json_object_get(t, "firstPacketAt");
		json_t *last = json_object_get(t, "lastPacketAt");
		json_t *track_id = json_object_get(t, "trackId");
		bool ended;

		if (!tp || !peer_id || strcmp(tp, peer_id) != 0)
			continue;
		/* statistics saved before sources existed: the kind's default */
		if (!source)
			source = kind && strcmp(kind, "video") == 0 ? "camera" : "microphone";
		ended = json_is_string(first) && json_is_string(last) &&
			!track_open(json_string_value(json_object_get(t, "state")));
		json_array_append_new(sources,
				      json_pack("{ss ss sO sO sO}", "source", source, "kind",
						kind ? kind : "", "trackId",
						track_id ? track_id : json_null(), "startedAt",
						json_is_string(first) ? first : json_null(),
						"endedAt", ended ? last : json_null()));
	}
	json_object_set_new(o, "sources", sources);
	/* the composer's talk time, saved with the output (src/compose) */
	if (rec->status && strcmp(rec->status, "done") == 0 && rec->metadata)
		meta = json_loads(rec->metadata, 0, NULL);
	talk = json_object_get(json_object_get(meta, "compose"), "talk");
	seconds = peer_id ? json_object_get(talk, peer_id) : NULL;
	if (json_is_number(seconds))
		json_object_set_new(o, "talkSeconds", json_real(json_number_value(seconds)));
	else if (json_is_object(talk))
		json_object_set_new(o, "talkSeconds", json_real(0));
	else
		json_object_set_new(o, "talkSeconds", json_null());
	json_decref(meta);
	json_decref(tracks);
}

json_t *vtp_access_entry_json(const vtp_access_entry *e)
{
	json_t *o = json_object();
	json_t *detail = NULL;

	json_object_set_new(o, "id", json_string(e->id));
	json_object_set_new(o, "recordingId", json_string(e->recording_id));
	json_object_set_new(o, "accessedBy", str_or_null(e->accessed_by));
	json_object_set_new(o, "accessType", json_string(e->access_type));
	json_object_set_new(o, "ipAddress", str_or_null(e->ip_address));
	json_object_set_new(o, "userAgent", str_or_null(e->user_agent));
	json_object_set_new(o, "accessedAt", time_or_null(e->accessed_at));
	if (e->detail)
		detail = json_loads(e->detail, 0, NULL);
	json_object_set_new(o, "detail", detail ? detail : json_null());
	return o;
}

json_t *vtp_user_json(const vtp_user *u)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(u->id));
	json_object_set_new(o, "email", json_string(u->email));
	json_object_set_new(o, "fullName", json_string(u->full_name));
	json_object_set_new(o, "role", json_string(u->role));
	json_object_set_new(o, "createdAt", time_or_null(u->created_at));
	return o;
}
