/* Client-facing JSON for recordings and their satellites. Optional values are
 * present as null so every object of a kind has the same shape. */
#include "recording.h"

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

json_t *vtp_recording_json(const vtp_recording *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "roomId", json_string(r->room_id));
	json_object_set_new(o, "title", json_string(r->title));
	json_object_set_new(o, "description", str_or_null(r->description));
	json_object_set_new(o, "startedBy", json_string(r->started_by));
	json_object_set_new(o, "status", json_string(r->status));
	json_object_set_new(o, "fileSize", r->file_size >= 0 ? json_integer(r->file_size) : json_null());
	json_object_set_new(o, "durationSeconds",
			    r->duration_seconds >= 0 ? json_real(r->duration_seconds) : json_null());
	json_object_set_new(o, "format", json_string(r->format));
	json_object_set_new(o, "videoCodec", json_string(r->video_codec));
	json_object_set_new(o, "audioCodec", json_string(r->audio_codec));
	json_object_set_new(o, "resolutionWidth", json_integer(r->resolution_width));
	json_object_set_new(o, "resolutionHeight", json_integer(r->resolution_height));
	json_object_set_new(o, "fps", json_integer(r->fps));
	json_object_set_new(o, "bitrate", json_integer(r->bitrate));
	json_object_set_new(o, "createdAt", time_or_null(r->created_at));
	json_object_set_new(o, "startedAt", time_or_null(r->created_at));
	json_object_set_new(o, "stoppedAt", time_or_null(r->stopped_at));
	json_object_set_new(o, "completedAt", time_or_null(r->completed_at));
	json_object_set_new(o, "deletedAt", time_or_null(r->deleted_at));
	json_object_set_new(o, "progress", json_integer(r->progress));
	json_object_set_new(o, "error", str_or_null(r->error));
	json_object_set_new(o, "participantCount", json_integer(r->participant_count));
	json_object_set_new(o, "tracks", json_array());
	return o;
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
