/* The permission policy for recordings (per endpoint in docs/openapi.yaml):
 * roles, share levels and who may do what. Pure functions of their
 * arguments; callers look up the role, whether the user started the
 * recording and the highest share level. Anything unexpected (unknown
 * action, out-of-range level) is refused, and a recording the user cannot
 * see is always VTP_ENOTFOUND so that its existence is never revealed. */
#include "auth/auth.h"

#include <string.h>

#include "core/error.h"

bool vtp_role_is(const char *role, const char *name)
{
	return role && strcmp(role, name) == 0;
}

bool vtp_role_valid(const char *role)
{
	return vtp_role_is(role, VTP_ROLE_ADMIN) || vtp_role_is(role, VTP_ROLE_INSTRUCTOR) ||
	       vtp_role_is(role, VTP_ROLE_STUDENT) || vtp_role_is(role, VTP_ROLE_SERVICE);
}

bool vtp_policy_can_start(const char *role)
{
	return vtp_role_is(role, VTP_ROLE_INSTRUCTOR) || vtp_role_is(role, VTP_ROLE_ADMIN);
}

static bool action_valid(vtp_action action)
{
	switch (action) {
	case VTP_ACT_VIEW:
	case VTP_ACT_DOWNLOAD:
	case VTP_ACT_STOP:
	case VTP_ACT_DELETE:
	case VTP_ACT_RESTORE:
	case VTP_ACT_SHARE:
	case VTP_ACT_MANAGE_SHARES:
	case VTP_ACT_ACCESS_LOG:
	case VTP_ACT_TRACKS:
		return true;
	}
	return false;
}

int vtp_policy_check(const char *role, bool is_starter, int share_level,
		     vtp_action action)
{
	/* A level outside the scale is a caller bug: treat it as no share. */
	if (share_level < VTP_PERM_NONE || share_level > VTP_PERM_SHARE)
		share_level = VTP_PERM_NONE;
	if (!action_valid(action))
		return vtp_role_is(role, VTP_ROLE_ADMIN) || is_starter ||
				       share_level >= VTP_PERM_VIEW
			       ? VTP_EFORBIDDEN
			       : VTP_ENOTFOUND;

	if (vtp_role_is(role, VTP_ROLE_ADMIN) || is_starter)
		return 0;
	/* The SFU integration registers tracks for any recording. */
	if (action == VTP_ACT_TRACKS && vtp_role_is(role, VTP_ROLE_SERVICE))
		return 0;
	if (share_level < VTP_PERM_VIEW)
		return VTP_ENOTFOUND;

	switch (action) {
	case VTP_ACT_VIEW:
		return 0;
	case VTP_ACT_DOWNLOAD:
		return share_level >= VTP_PERM_DOWNLOAD ? 0 : VTP_EFORBIDDEN;
	case VTP_ACT_SHARE:
		return share_level >= VTP_PERM_SHARE ? 0 : VTP_EFORBIDDEN;
	case VTP_ACT_STOP:
	case VTP_ACT_DELETE:
	case VTP_ACT_RESTORE:
	case VTP_ACT_MANAGE_SHARES:
	case VTP_ACT_ACCESS_LOG:
	case VTP_ACT_TRACKS:
		return VTP_EFORBIDDEN;
	}
	return VTP_EFORBIDDEN;
}

int vtp_perm_parse(const char *s)
{
	if (!s)
		return VTP_PERM_NONE;
	if (strcmp(s, "view") == 0)
		return VTP_PERM_VIEW;
	if (strcmp(s, "download") == 0)
		return VTP_PERM_DOWNLOAD;
	if (strcmp(s, "share") == 0)
		return VTP_PERM_SHARE;
	return VTP_PERM_NONE;
}

const char *vtp_perm_name(int level)
{
	switch (level) {
	case VTP_PERM_VIEW: return "view";
	case VTP_PERM_DOWNLOAD: return "download";
	case VTP_PERM_SHARE: return "share";
	default: return "none";
	}
}
