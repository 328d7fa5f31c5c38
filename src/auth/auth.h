/* Authentication and authorisation: argon2id password hashes, HS256 JWTs,
 * login throttling and the permission policy. Nothing here touches HTTP or
 * the database; callers pass in what the policy needs. */
#ifndef VTP_AUTH_H
#define VTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/random.h"

/* ---- passwords (argon2id) ----------------------------------------------- */

/* Hashes with a random salt; *encoded is the PHC string ($argon2id$...),
 * freed with vtp_free. */
int vtp_password_hash(const char *password, char **encoded);
/* True only if encoded is a valid argon2id hash of password. */
bool vtp_password_verify(const char *encoded, const char *password);
/* Spends the same time as a verify, for unknown users (no timing oracle). */
void vtp_password_burn(const char *password);

/* ---- JWT (HS256 only) --------------------------------------------------- */

/* Signs {"sub":sub,"iat":now_s,"exp":now_s+ttl_s} with HS256. *token freed
 * with vtp_free. */
int vtp_jwt_sign(const unsigned char *key, size_t keylen, const char *sub,
		 int64_t now_s, int64_t ttl_s, char **token);
/* Verifies signature and claims. Refuses any alg other than HS256 (incl.
 * "none"), a missing or non-integer exp, exp <= now_s, a non-integer nbf or
 * nbf > now_s, a sub that is not a UUID. On success sub receives the user
 * id and *exp (if non-NULL) the expiry. On failure returns VTP_EUNAUTH and
 * sets *reason (static string, if non-NULL): "malformed", "bad_alg",
 * "bad_signature", "expired", "no_exp", "bad_nbf", "not_yet_valid",
 * "bad_sub". */
int vtp_jwt_verify(const unsigned char *key, size_t keylen, const char *token,
		   int64_t now_s, char sub[VTP_UUID_BUFLEN], int64_t *exp,
		   const char **reason);

/* ---- signed media URLs --------------------------------------------------- */

/* A `?token=` for the media URLs of one recording (download, HLS,
 * thumbnail), for players that cannot send an Authorization header. It
 * binds the recording, the user and a scope, and expires:
 *   <scope>.<user id, 32 hex>.<exp, unix seconds>.<MAC, 32 hex>
 * where MAC is HMAC-SHA256, cut to 128 bits, keyed by a key derived from
 * the JWT secret, over the scope, recording, user and exp. Holding one
 * proves only that the server gave it out: the user's permission is
 * checked again when it is used. */
typedef enum vtp_media_scope {
	VTP_MEDIA_VIEW = 'v',     /* HLS and thumbnail */
	VTP_MEDIA_DOWNLOAD = 'd', /* the file */
} vtp_media_scope;

#define VTP_MEDIA_TOKEN_BUFLEN 96

/* exp_s: when it stops working (unix seconds). */
void vtp_media_token_sign(const unsigned char *key, size_t keylen, vtp_media_scope scope,
			  const char *recording_id, const char *user_id, int64_t exp_s,
			  char out[VTP_MEDIA_TOKEN_BUFLEN]);
/* 0 with the user id and scope, or VTP_EUNAUTH with *reason "malformed",
 * "bad_signature" (also: another recording's) or "expired". */
int vtp_media_token_verify(const unsigned char *key, size_t keylen, const char *token,
			   const char *recording_id, int64_t now_s,
			   char user_id[VTP_UUID_BUFLEN], vtp_media_scope *scope,
			   const char **reason);
/* The expiry given to tokens made at now_s: at least ttl_s away, rounded up
 * to a 5-minute step, so the URLs of one recording stay the same for a
 * while (players and browsers can cache what they fetched). */
int64_t vtp_media_token_expiry(int64_t now_s, int64_t ttl_s);

/* ---- login throttling --------------------------------------------------- */

/* Counts failures per key (an email or an IP address). After `threshold`
 * failures in 15 minutes a key must wait 2^(failures-threshold) seconds
 * (capped at 15 minutes) after its latest failure. Thread-safe; bounded memory (oldest keys are
 * forgotten first). */
typedef struct vtp_throttle vtp_throttle;
vtp_throttle *vtp_throttle_new(int threshold);
void vtp_throttle_free(vtp_throttle *t);
/* 0 when the key may try now, else VTP_ELIMIT and *retry_after_ms. */
int vtp_throttle_check(vtp_throttle *t, const char *key, int64_t now_ms,
		       int64_t *retry_after_ms);
void vtp_throttle_failure(vtp_throttle *t, const char *key, int64_t now_ms);
/* Check and reserve in one step, under the lock: 0 means the attempt may
 * go ahead and is now in flight, counting as a failure made now until its
 * outcome is known (so parallel attempts cannot all pass the check before
 * any of them fails); else VTP_ELIMIT, nothing recorded. Every allowed
 * attempt ends with exactly one of: vtp_throttle_attempt_failed (it was a
 * failure), vtp_throttle_refund (it was not: a correct login, or it never
 * ran; it leaves no trace) or vtp_throttle_success (correct, and forget the
 * key's failures too). */
int vtp_throttle_attempt(vtp_throttle *t, const char *key, int64_t now_ms,
			 int64_t *retry_after_ms);
void vtp_throttle_attempt_failed(vtp_throttle *t, const char *key, int64_t now_ms);
void vtp_throttle_refund(vtp_throttle *t, const char *key);
/* Unexpired failures of the key (attempts in flight not included). */
uint32_t vtp_throttle_failures(vtp_throttle *t, const char *key, int64_t now_ms);
void vtp_throttle_success(vtp_throttle *t, const char *key);

/* ---- permission policy -------------------------------------------------- */

enum { VTP_PERM_NONE = 0, VTP_PERM_VIEW = 1, VTP_PERM_DOWNLOAD = 2, VTP_PERM_SHARE = 3 };

typedef enum vtp_action {
	VTP_ACT_VIEW,          /* get, participants, hls, thumbnail */
	VTP_ACT_DOWNLOAD,
	VTP_ACT_STOP,
	VTP_ACT_DELETE,
	VTP_ACT_RESTORE,
	VTP_ACT_SHARE,         /* create a share */
	VTP_ACT_MANAGE_SHARES, /* list / revoke shares */
	VTP_ACT_ACCESS_LOG,
	VTP_ACT_TRACKS,        /* register / end ingest tracks */
} vtp_action;

/* The roles, as stored in the users table and carried in tokens. */
#define VTP_ROLE_ADMIN "admin"
#define VTP_ROLE_INSTRUCTOR "instructor"
#define VTP_ROLE_STUDENT "student"
#define VTP_ROLE_SERVICE "service"
/* The one comparison of roles: role is `name` (one of VTP_ROLE_*); false
 * for NULL. */
bool vtp_role_is(const char *role, const char *name);
bool vtp_role_valid(const char *role);
/* Only instructors and admins start recordings. */
bool vtp_policy_can_start(const char *role);
/* Decides whether a user may do `action` on one recording.
 *   role        the user's role
 *   is_starter  the user started the recording
 *   share_level the highest VTP_PERM_* the user holds through shares
 * Returns 0 (allowed), VTP_ENOTFOUND (the recording is not visible to the
 * user: answer as if it did not exist) or VTP_EFORBIDDEN (visible, but not
 * this action). Permissions are ordered: share > download > view. */
int vtp_policy_check(const char *role, bool is_starter, int share_level,
		     vtp_action action);
/* "view" -> VTP_PERM_VIEW ...; VTP_PERM_NONE for anything else. */
int vtp_perm_parse(const char *s);
const char *vtp_perm_name(int level);

#endif
