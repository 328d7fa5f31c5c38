/* Names of the VTP_E* codes. */
#include "error.h"

const char *vtp_strerror(int err)
{
	switch (err) {
	case VTP_OK: return "success";
	case VTP_EINVAL: return "invalid input";
	case VTP_ENOTFOUND: return "not found";
	case VTP_ECONFLICT: return "conflict";
	case VTP_EFORBIDDEN: return "forbidden";
	case VTP_EUNAUTH: return "unauthorized";
	case VTP_EIO: return "I/O error";
	case VTP_EDB: return "database error";
	case VTP_EUNAVAIL: return "service unavailable";
	case VTP_ETOOBIG: return "too large";
	case VTP_ERANGE: return "out of range";
	case VTP_EINTERNAL: return "internal error";
	case VTP_ELIMIT: return "rate limited";
	default: return "unknown error";
	}
}
